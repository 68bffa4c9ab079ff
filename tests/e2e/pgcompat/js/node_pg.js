// node-postgres (npm `pg`): parameterised queries (extended protocol), types as pg parses
// them, named prepared statements, a transaction with a savepoint, errors with their SQLSTATE,
// and a pool. Prints "ok" when every check passes.
const assert = require("assert");
const { Client, Pool } = require("pg");

const config = {
  host: "127.0.0.1",
  port: Number(process.env.PG_PORT),
  user: "thunder",
  password: "thunder",
  database: "thunderdb",
};

async function main() {
  const c = new Client(config);
  await c.connect();
  await c.query("DROP TABLE IF EXISTS items");
  await c.query(
    "CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT NOT NULL, qty INT, price NUMERIC(8,2), seen TIMESTAMPTZ, ok BOOLEAN, data BYTEA)"
  );
  const inserted = await c.query(
    "INSERT INTO items (name, qty, price, seen, ok, data) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    ["pen", 3, "1.50", new Date("2024-01-02T03:04:05Z"), true, Buffer.from([0, 255])]
  );
  assert.strictEqual(inserted.rowCount, 1);
  assert.strictEqual(inserted.rows[0].id, 1);
  const r = await c.query("SELECT * FROM items WHERE id = $1", [1]);
  const row = r.rows[0];
  assert.strictEqual(row.name, "pen");
  assert.strictEqual(row.qty, 3);
  assert.strictEqual(row.price, "1.50"); // numeric comes back as text
  assert.strictEqual(row.seen.toISOString(), "2024-01-02T03:04:05.000Z");
  assert.strictEqual(row.ok, true);
  assert.deepStrictEqual([...row.data], [0, 255]);
  assert.deepStrictEqual(
    r.fields.map((f) => f.name),
    ["id", "name", "qty", "price", "seen", "ok", "data"]
  );

  // A named prepared statement, executed several times.
  for (let i = 0; i < 3; i++) {
    const res = await c.query({
      name: "add-item",
      text: "INSERT INTO items (name, qty) VALUES ($1, $2)",
      values: [`n${i}`, i],
    });
    assert.strictEqual(res.command, "INSERT");
    assert.strictEqual(res.rowCount, 1);
  }
  const count = await c.query("SELECT count(*) AS n FROM items");
  assert.strictEqual(count.rows[0].n, "4"); // bigint comes back as text

  // A transaction with a savepoint that takes back a failed insert.
  await c.query("BEGIN");
  await c.query("INSERT INTO items (name) VALUES ('kept')");
  await c.query("SAVEPOINT s");
  await assert.rejects(c.query("INSERT INTO items (name) VALUES (NULL)"), (e) => e.code === "23502");
  await c.query("ROLLBACK TO SAVEPOINT s");
  await c.query("COMMIT");
  const kept = await c.query("SELECT count(*)::int AS n FROM items WHERE name = 'kept'");
  assert.strictEqual(kept.rows[0].n, 1);

  // Arrays: JavaScript arrays in (sent as array literals) and out, and = ANY($1).
  await c.query("CREATE TABLE tagged (id int PRIMARY KEY, tags text[], nums int[])");
  await c.query("INSERT INTO tagged VALUES ($1, $2, $3)", [1, ["a", "b,c", null, 'q"x'], [1, 2]]);
  await c.query("INSERT INTO tagged VALUES ($1, $2, $3)", [2, [], [3]]);
  const tagged = await c.query("SELECT id, tags, nums FROM tagged ORDER BY id");
  assert.deepStrictEqual(tagged.rows, [
    { id: 1, tags: ["a", "b,c", null, 'q"x'], nums: [1, 2] },
    { id: 2, tags: [], nums: [3] },
  ]);
  const any = await c.query("SELECT id FROM tagged WHERE id = ANY($1) ORDER BY id", [[2, 5]]);
  assert.deepStrictEqual(any.rows, [{ id: 2 }]);
  const overlap = await c.query("SELECT id FROM tagged WHERE tags && $1", [["b,c"]]);
  assert.deepStrictEqual(overlap.rows, [{ id: 1 }]);

  // Errors carry PostgreSQL's codes; the connection goes on.
  await assert.rejects(c.query("SELECT * FROM nope"), (e) => e.code === "42P01");
  await assert.rejects(c.query("SELECT 1/0"), (e) => e.code === "22012");
  await assert.rejects(c.query("INSERT INTO items (id, name) VALUES (1, 'dup')"), (e) => e.code === "23505");
  const one = await c.query("SELECT 1 AS x");
  assert.strictEqual(one.rows[0].x, 1);
  await c.end();

  // A pool, queries from several clients at once.
  const pool = new Pool({ ...config, max: 4 });
  const results = await Promise.all(
    [...Array(8).keys()].map((i) => pool.query("SELECT $1::int * 2 AS v", [i]))
  );
  assert.deepStrictEqual(results.map((x) => x.rows[0].v), [0, 2, 4, 6, 8, 10, 12, 14]);
  await pool.end();
  console.log("ok");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
