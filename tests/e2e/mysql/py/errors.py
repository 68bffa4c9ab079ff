# Errors by number, as applications catch them, and the connection staying usable after each.
from prelude import *


@case
def common_errors_by_number():
    c = connect()
    run(c, "CREATE TABLE e (id INT PRIMARY KEY, name VARCHAR(5) NOT NULL, UNIQUE KEY uname (name))")
    run(c, "INSERT INTO e VALUES (1, 'a')")
    eq(error(1146, run, c, "SELECT * FROM missing"), "Table 'thunderdb.missing' doesn't exist")
    eq(error(1054, run, c, "SELECT missing FROM e"), "Unknown column 'missing' in 'field list'")
    eq(error(1062, run, c, "INSERT INTO e VALUES (1, 'b')"), "Duplicate entry '1' for key 'e.PRIMARY'")
    eq(error(1062, run, c, "INSERT INTO e VALUES (2, 'a')"), "Duplicate entry 'a' for key 'uname'")
    error(1064, run, c, "SELECT FROM WHERE")
    eq(error(1048, run, c, "INSERT INTO e VALUES (3, NULL)"), "Column 'name' cannot be null")
    error(1406, run, c, "INSERT INTO e VALUES (4, 'toolong')")
    error(1049, run, c, "USE nowhere")
    error(1193, run, c, "SET @@nonsense = 1")
    try:
        connect(password="wrong")
        raise AssertionError("a wrong password was accepted")
    except pymysql.err.OperationalError as e:
        eq(e.args[0], 1045)
    try:
        connect(database="nowhere")
        raise AssertionError("an unknown database was accepted")
    except pymysql.err.OperationalError as e:
        eq(e.args[0], 1049)
    eq(one(c, "SELECT COUNT(*) FROM e"), 1, "the connection still works")


main()
