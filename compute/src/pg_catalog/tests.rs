//! psql 15's meta-command queries, verbatim, through a session: the answers come from the
//! catalog the DDL wrote.

use crate::tests::{TestDb, big_stack, run};

const SETUP: &str = "\
CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, total NUMERIC(10,2), note TEXT, created_at TIMESTAMPTZ DEFAULT now(), CHECK (total >= 0));
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE tags (name VARCHAR(20) UNIQUE, code CHAR(3) DEFAULT 'abc');";

/// `\dt`
const LIST_TABLES: &str = r#"SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;"#;

/// `\di`
const LIST_INDEXES: &str = r#"SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner",
  c2.relname as "Table"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
     LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
     LEFT JOIN pg_catalog.pg_class c2 ON i.indrelid = c2.oid
WHERE c.relkind IN ('i','I','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;"#;

/// `\d orders`, first step: the table's OID.
const FIND_TABLE: &str = r#"SELECT c.oid,
  n.nspname,
  c.relname
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname OPERATOR(pg_catalog.~) '^(orders)$' COLLATE pg_catalog.default
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 2, 3;"#;

/// The rest of `\d orders`, with `OID` standing for the table's OID.
const DESCRIBE: &[&str] = &[
    r#"SELECT c.relchecks, c.relkind, c.relhasindex, c.relhasrules, c.relhastriggers, c.relrowsecurity, c.relforcerowsecurity, false AS relhasoids, c.relispartition, '', c.reltablespace, CASE WHEN c.reloftype = 0 THEN '' ELSE c.reloftype::pg_catalog.regtype::pg_catalog.text END, c.relpersistence, c.relreplident, am.amname
FROM pg_catalog.pg_class c
 LEFT JOIN pg_catalog.pg_class tc ON (c.reltoastrelid = tc.oid)
LEFT JOIN pg_catalog.pg_am am ON (c.relam = am.oid)
WHERE c.oid = 'OID';"#,
    r#"SELECT a.attname,
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
  a.attnotnull,
  (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t
   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,
  a.attidentity,
  a.attgenerated
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = 'OID' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;"#,
    r#"SELECT c2.relname, i.indisprimary, i.indisunique, i.indisclustered, i.indisvalid, pg_catalog.pg_get_indexdef(i.indexrelid, 0, true),
  pg_catalog.pg_get_constraintdef(con.oid, true), contype, condeferrable, condeferred, i.indisreplident, c2.reltablespace
FROM pg_catalog.pg_class c, pg_catalog.pg_class c2, pg_catalog.pg_index i
  LEFT JOIN pg_catalog.pg_constraint con ON (conrelid = i.indrelid AND conindid = i.indexrelid AND contype IN ('p','u','x'))
WHERE c.oid = 'OID' AND c.oid = i.indrelid AND i.indexrelid = c2.oid
ORDER BY i.indisprimary DESC, c2.relname;"#,
    r#"SELECT r.conname, pg_catalog.pg_get_constraintdef(r.oid, true)
FROM pg_catalog.pg_constraint r
WHERE r.conrelid = 'OID' AND r.contype = 'c'
ORDER BY 1;"#,
    r#"SELECT pol.polname, pol.polpermissive,
  CASE WHEN pol.polroles = '{0}' THEN NULL ELSE pg_catalog.array_to_string(array(select rolname from pg_catalog.pg_roles where oid = any (pol.polroles) order by 1),',') END,
  pg_catalog.pg_get_expr(pol.polqual, pol.polrelid),
  pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid),
  CASE pol.polcmd
    WHEN 'r' THEN 'SELECT'
    WHEN 'a' THEN 'INSERT'
    WHEN 'w' THEN 'UPDATE'
    WHEN 'd' THEN 'DELETE'
    END AS cmd
FROM pg_catalog.pg_policy pol
WHERE pol.polrelid = 'OID' ORDER BY 1;"#,
    r#"SELECT oid, stxrelid::pg_catalog.regclass, stxnamespace::pg_catalog.regnamespace::pg_catalog.text AS nsp, stxname,
pg_catalog.pg_get_statisticsobjdef_columns(oid) AS columns,
  'd' = any(stxkind) AS ndist_enabled,
  'f' = any(stxkind) AS deps_enabled,
  'm' = any(stxkind) AS mcv_enabled,
stxstattarget
FROM pg_catalog.pg_statistic_ext
WHERE stxrelid = 'OID'
ORDER BY nsp, stxname;"#,
    r#"SELECT pubname
     , NULL
     , NULL
FROM pg_catalog.pg_publication p
     JOIN pg_catalog.pg_publication_namespace pn ON p.oid = pn.pnpubid
     JOIN pg_catalog.pg_class pc ON pc.relnamespace = pn.pnnspid
WHERE pc.oid ='OID' and pg_catalog.pg_relation_is_publishable('OID')
UNION
SELECT pubname
     , pg_get_expr(pr.prqual, c.oid)
     , (CASE WHEN pr.prattrs IS NOT NULL THEN
         (SELECT string_agg(attname, ', ')
           FROM pg_catalog.generate_series(0, pg_catalog.array_upper(pr.prattrs::pg_catalog.int2[], 1)) s,
                pg_catalog.pg_attribute
          WHERE attrelid = pr.prrelid AND attnum = prattrs[s])
        ELSE NULL END) FROM pg_catalog.pg_publication p
     JOIN pg_catalog.pg_publication_rel pr ON p.oid = pr.prpubid
     JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
WHERE pr.prrelid = 'OID'
UNION
SELECT pubname
     , NULL
     , NULL
FROM pg_catalog.pg_publication p
WHERE p.puballtables AND pg_catalog.pg_relation_is_publishable('OID')
ORDER BY 1;"#,
    r#"SELECT c.oid::pg_catalog.regclass
FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i
WHERE c.oid = i.inhparent AND i.inhrelid = 'OID'
  AND c.relkind != 'p' AND c.relkind != 'I'
ORDER BY inhseqno;"#,
    r#"SELECT c.oid::pg_catalog.regclass, c.relkind, inhdetachpending, pg_catalog.pg_get_expr(c.relpartbound, c.oid)
FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i
WHERE c.oid = i.inhrelid AND i.inhparent = 'OID'
ORDER BY pg_catalog.pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT', c.oid::pg_catalog.regclass::pg_catalog.text;"#,
];

/// `\dn`, `\l`, `\du`.
const OTHERS: &[&str] = &[
    r#"SELECT n.nspname AS "Name",
  pg_catalog.pg_get_userbyid(n.nspowner) AS "Owner"
FROM pg_catalog.pg_namespace n
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
ORDER BY 1;"#,
    r#"SELECT d.datname as "Name",
       pg_catalog.pg_get_userbyid(d.datdba) as "Owner",
       pg_catalog.pg_encoding_to_char(d.encoding) as "Encoding",
       d.datcollate as "Collate",
       d.datctype as "Ctype",
       d.daticulocale as "ICU Locale",
       CASE d.datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' END AS "Locale Provider",
       pg_catalog.array_to_string(d.datacl, E'\n') AS "Access privileges"
FROM pg_catalog.pg_database d
ORDER BY 1;"#,
    r#"SELECT r.rolname, r.rolsuper, r.rolinherit,
  r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,
  r.rolconnlimit, r.rolvaliduntil,
  ARRAY(SELECT b.rolname
        FROM pg_catalog.pg_auth_members m
        JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid)
        WHERE m.member = r.oid) as memberof
, r.rolreplication
, r.rolbypassrls
FROM pg_catalog.pg_roles r
WHERE r.rolname !~ '^pg_'
ORDER BY 1;"#,
];

#[test]
fn psql_meta_command_queries() {
    big_stack(async {
        let db = TestDb::new().await;
        let mut s = db.session();
        for stmt in SETUP.split(';').filter(|x| !x.trim().is_empty()) {
            let out = run(&mut s, stmt).await;
            assert!(!out[0].starts_with("ERROR"), "{stmt}: {out:?}");
        }

        assert_eq!(
            run(&mut s, LIST_TABLES).await,
            vec!["public|orders|table|u", "public|tags|table|u"]
        );
        assert_eq!(
            run(&mut s, LIST_INDEXES).await,
            vec![
                "public|orders_customer|index|u|orders",
                "public|orders_pkey|index|u|orders",
                "public|tags_name_key|index|u|tags",
            ]
        );
        let found = run(&mut s, FIND_TABLE).await;
        assert_eq!(found.len(), 1, "{found:?}");
        let oid = found[0].split('|').next().expect("oid").to_string();
        assert!(found[0].ends_with("|public|orders"), "{found:?}");

        let results: Vec<Vec<String>> = {
            let mut out = Vec::new();
            for q in DESCRIBE {
                out.push(run(&mut s, &q.replace("OID", &oid)).await);
            }
            out
        };
        assert_eq!(
            results[0],
            vec!["1|r|true|false|false|false|false|false|false||0||p|d|heap"]
        );
        assert_eq!(
            results[1],
            vec![
                "id|bigint|NULL|true|NULL||",
                "customer_id|bigint|NULL|true|NULL||",
                "total|numeric(10,2)|NULL|false|NULL||",
                "note|text|NULL|false|NULL||",
                "created_at|timestamp with time zone|now()|false|NULL||",
            ]
        );
        assert_eq!(
            results[2],
            vec![
                "orders_pkey|true|true|false|true|CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id)|PRIMARY KEY (id)|p|false|false|false|0",
                "orders_customer|false|false|false|true|CREATE INDEX orders_customer ON public.orders USING btree (customer_id)|NULL|NULL|NULL|NULL|false|0",
            ]
        );
        assert_eq!(results[3], vec!["orders_total_check|CHECK (total >= 0)"]);
        for (i, r) in results.iter().enumerate().skip(4) {
            assert!(r.is_empty(), "query {i} of \\d: {r:?}");
        }

        let others: Vec<Vec<String>> = {
            let mut out = Vec::new();
            for q in OTHERS {
                out.push(run(&mut s, q).await);
            }
            out
        };
        assert_eq!(others[0], vec!["public|pg_database_owner"]);
        assert_eq!(others[1], vec!["db|u|UTF8|C|C|NULL|libc|NULL"]);
        assert_eq!(
            others[2],
            vec!["u|true|true|true|true|true|-1|NULL|[]|true|true"]
        );
    });
}

#[test]
fn catalog_functions_and_casts() {
    big_stack(async {
        let db = TestDb::new().await;
        let mut s = db.session();
        run(
            &mut s,
            "CREATE TABLE t (a INT PRIMARY KEY, b VARCHAR(10) NOT NULL DEFAULT 'x')",
        )
        .await;
        assert_eq!(
            run(
                &mut s,
                "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 ORDER BY attnum"
            )
            .await,
            vec!["a|integer|true", "b|character varying(10)|true"]
        );
        assert_eq!(
            run(
                &mut s,
                "SELECT 't'::regclass::oid = c.oid, c.oid::regclass, 'int4'::regtype::oid, 23::regtype::text FROM pg_class c WHERE relname = 't'"
            )
            .await,
            vec!["true|t|23|integer"]
        );
        assert_eq!(
            run(&mut s, "SELECT 'nope'::regclass").await,
            vec!["ERROR 42P01: relation \"nope\" does not exist"]
        );
        assert_eq!(
            run(
                &mut s,
                "SELECT tablename, indexname, indexdef FROM pg_indexes"
            )
            .await,
            vec!["t|t_pkey|CREATE UNIQUE INDEX t_pkey ON public.t USING btree (a)"]
        );
        assert_eq!(
            run(&mut s, "SELECT current_schemas(true), current_schemas(false), pg_is_in_recovery(), has_table_privilege('t', 'SELECT')").await,
            vec!["[pg_catalog, public]|[public]|false|true"]
        );
        // A scalar sub-query returning two rows is PostgreSQL's error, not an arbitrary row.
        assert_eq!(
            run(&mut s, "SELECT (SELECT attname FROM pg_attribute a WHERE a.attrelid = c.oid) FROM pg_class c WHERE relname = 't'").await,
            vec!["ERROR 21000: more than one row returned by a subquery used as an expression"]
        );
        // A correlated scalar sub-query without an aggregate: NULL where no row matches.
        assert_eq!(
            run(
                &mut s,
                "SELECT relname, (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = 2) FROM pg_class c WHERE relnamespace = 2200 ORDER BY 1"
            )
            .await,
            vec!["t|b", "t_pkey|NULL"]
        );
    });
}
