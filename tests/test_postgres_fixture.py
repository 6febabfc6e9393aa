"""The database fixtures hand out real, empty databases."""

import sqlalchemy as sa


def test_db_url_is_a_working_empty_database(db_url):
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        assert sa.inspect(conn).get_table_names() == []
        conn.execute(sa.text("CREATE TABLE probe (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO probe VALUES (1)"))
        assert conn.execute(sa.text("SELECT sum(x) FROM probe")).scalar() == 1
    engine.dispose()
