// The PostgreSQL JDBC driver (Debian libpostgresql-jdbc-java): prepared statements with typed
// parameters (server-side prepared after a few executions), batches, generated keys, metadata,
// transactions with a savepoint, and SQLSTATEs. Prints "ok" when every check passes.
import java.math.BigDecimal;
import java.sql.*;

public class JdbcCheck {
    static void check(boolean cond, String what) {
        if (!cond) throw new AssertionError(what);
    }

    static String state(SQLException e) { return e.getSQLState(); }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + System.getenv("PG_PORT") + "/thunderdb";
        try (Connection c = DriverManager.getConnection(url, "thunder", "thunder")) {
            try (Statement s = c.createStatement()) {
                s.execute("DROP TABLE IF EXISTS acct");
                s.execute("CREATE TABLE acct (id BIGSERIAL PRIMARY KEY, owner VARCHAR(20) NOT NULL, "
                        + "balance NUMERIC(12,2), opened DATE, active BOOLEAN)");
            }
            // Generated keys and typed parameters; prepareThreshold makes later runs server-side.
            try (PreparedStatement p = c.prepareStatement(
                    "INSERT INTO acct (owner, balance, opened, active) VALUES (?, ?, ?, ?)",
                    Statement.RETURN_GENERATED_KEYS)) {
                for (int i = 1; i <= 6; i++) {
                    p.setString(1, "o" + i);
                    p.setBigDecimal(2, new BigDecimal(i + ".25"));
                    p.setDate(3, Date.valueOf("2024-01-0" + i));
                    p.setBoolean(4, i % 2 == 0);
                    check(p.executeUpdate() == 1, "one row inserted");
                    try (ResultSet k = p.getGeneratedKeys()) {
                        check(k.next() && k.getLong(1) == i, "generated key " + i);
                    }
                }
            }
            try (PreparedStatement q = c.prepareStatement("SELECT owner, balance, opened, active FROM acct WHERE id = ?")) {
                for (int i = 1; i <= 6; i++) {
                    q.setLong(1, i);
                    try (ResultSet r = q.executeQuery()) {
                        check(r.next(), "row " + i);
                        check(r.getString(1).equals("o" + i), "owner");
                        check(r.getBigDecimal(2).equals(new BigDecimal(i + ".25")), "balance");
                        check(r.getDate(3).toString().equals("2024-01-0" + i), "date");
                        check(r.getBoolean(4) == (i % 2 == 0), "bool");
                        check(!r.next(), "one row");
                    }
                }
                ResultSetMetaData md = q.getMetaData();
                check(md.getColumnCount() == 4 && md.getColumnName(2).equals("balance"), "metadata");
                check(md.getColumnType(2) == Types.NUMERIC, "numeric type");
            }
            // A batch.
            try (PreparedStatement b = c.prepareStatement("UPDATE acct SET balance = balance + ? WHERE id = ?")) {
                for (int i = 1; i <= 3; i++) {
                    b.setBigDecimal(1, BigDecimal.TEN);
                    b.setLong(2, i);
                    b.addBatch();
                }
                int[] counts = b.executeBatch();
                check(counts.length == 3 && counts[0] == 1 && counts[2] == 1, "batch counts");
            }
            // A transaction with a savepoint.
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.executeUpdate("INSERT INTO acct (owner) VALUES ('tx')");
                Savepoint sp = c.setSavepoint();
                try {
                    s.executeUpdate("INSERT INTO acct (owner) VALUES (NULL)");
                    throw new AssertionError("NULL owner accepted");
                } catch (SQLException e) {
                    check("23502".equals(state(e)), "not null: " + state(e));
                }
                c.rollback(sp);
                c.commit();
            }
            c.setAutoCommit(true);
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT count(*) FROM acct")) {
                check(r.next() && r.getLong(1) == 7, "count after the transaction");
            }
            // Errors.
            try (Statement s = c.createStatement()) {
                s.executeQuery("SELECT * FROM nope");
                throw new AssertionError("unknown table accepted");
            } catch (SQLException e) {
                check("42P01".equals(state(e)), "undefined table: " + state(e));
            }
            // Arrays: java.sql.Array in and out, and = ANY(?) with an array parameter.
            try (Statement s = c.createStatement()) {
                s.execute("DROP TABLE IF EXISTS tagged");
                s.execute("CREATE TABLE tagged (id INT PRIMARY KEY, tags TEXT[], scores INT[])");
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO tagged VALUES (?, ?, ?)")) {
                for (int i = 1; i <= 6; i++) {
                    p.setInt(1, i);
                    p.setArray(2, c.createArrayOf("text", new String[] {"t" + i, "a b", null}));
                    p.setArray(3, c.createArrayOf("int4", new Integer[] {i, i * 10}));
                    check(p.executeUpdate() == 1, "array row inserted");
                }
            }
            try (PreparedStatement q = c.prepareStatement("SELECT id, tags, scores FROM tagged WHERE id = ANY(?) ORDER BY id")) {
                for (int round = 0; round < 6; round++) {
                    q.setArray(1, c.createArrayOf("int4", new Integer[] {2, 4}));
                    try (ResultSet r = q.executeQuery()) {
                        check(r.next() && r.getInt(1) == 2, "first ANY row");
                        String[] tags = (String[]) r.getArray(2).getArray();
                        check(tags.length == 3 && tags[0].equals("t2") && tags[1].equals("a b") && tags[2] == null,
                                "text[] read back");
                        Integer[] scores = (Integer[]) r.getArray(3).getArray();
                        check(scores.length == 2 && scores[1] == 20, "int[] read back");
                        check(r.getMetaData().getColumnTypeName(2).equals("_text"), "text[] column type");
                        check(r.next() && r.getInt(1) == 4 && !r.next(), "second ANY row");
                    }
                }
            }
            // Metadata the way tools ask for it.
            DatabaseMetaData meta = c.getMetaData();
            check(meta.getDatabaseProductName().equals("PostgreSQL"), "product name");
            try (ResultSet t = meta.getTables(null, "public", "acct", new String[] {"TABLE"})) {
                check(t.next() && t.getString("TABLE_NAME").equals("acct"), "getTables");
            }
        }
        System.out.println("ok");
    }
}
