# SQLAlchemy 2 ORM on the psycopg driver: create_all, add / query / commit, a relationship join,
# rollback, cascades through the ORM over the database's foreign key. (The Inspector's column,
# primary-key and index reflection queries need catalog features not built yet.)
from typing import List, Optional

from sqlalchemy import ForeignKey, Index, String, create_engine, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from prelude import PORT, case, eq, run_cases


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    fullname: Mapped[Optional[str]]
    addresses: Mapped[List["Address"]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class Address(Base):
    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user: Mapped["User"] = relationship(back_populates="addresses")
    __table_args__ = (Index("addresses_email_idx", "email"),)


engine = create_engine(
    f"postgresql+psycopg://thunder:thunder@127.0.0.1:{PORT}/thunderdb"
)


def reset():
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)


@case
def add_query_commit_and_join():
    with Session(engine) as s:
        s.add_all(
            [
                User(name="ann", fullname="Ann A", addresses=[Address(email="ann@x"), Address(email="a2@x")]),
                User(name="bob", addresses=[Address(email="bob@x")]),
                User(name="cy"),
            ]
        )
        s.commit()
        ann = s.scalars(select(User).where(User.name == "ann")).one()
        eq(sorted(a.email for a in ann.addresses), ["a2@x", "ann@x"])
        rows = s.execute(
            select(User.name, Address.email).join(User.addresses).order_by(Address.email)
        ).all()
        eq([tuple(r) for r in rows], [("ann", "a2@x"), ("ann", "ann@x"), ("bob", "bob@x")])
        eq(s.get(User, ann.id).fullname, "Ann A")
        # Rolled back work is gone; the session goes on.
        s.add(User(name="dan"))
        s.flush()
        s.rollback()
        eq(s.scalars(select(User.name).order_by(User.name)).all(), ["ann", "bob", "cy"])
        # delete-orphan cascade through the ORM, and the database's own foreign key.
        s.delete(ann)
        s.commit()
        eq(s.scalars(select(Address.email).order_by(Address.email)).all(), ["bob@x"])
    # The tables create_all made, as the Inspector lists them, with the foreign key.
    insp = inspect(engine)
    eq(sorted(insp.get_table_names()), ["addresses", "users"])
    fks = insp.get_foreign_keys("addresses")
    eq(
        [(f["constrained_columns"], f["referred_table"], f["referred_columns"]) for f in fks],
        [(["user_id"], "users", ["id"])],
    )


run_cases(reset)
