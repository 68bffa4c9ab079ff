# What every PostgreSQL-driver script shares: a psycopg connection to the server under test
# (PG_PORT), and a reset that drops the tables the cases create.
import os

import psycopg

from cases import case, eq, run_cases  # noqa: F401

PORT = int(os.environ["PG_PORT"])
DSN = f"host=127.0.0.1 port={PORT} user=thunder password=thunder dbname=thunderdb"


def connect(**kwargs):
    return psycopg.connect(DSN, **kwargs)


def reset_tables(*names):
    def reset():
        with connect(autocommit=True) as c:
            for n in names:
                c.execute(f"DROP TABLE IF EXISTS {n}")

    return reset
