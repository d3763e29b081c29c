"""Privacy budgets per (authorization, dataset), persisted in the control database and the ledger.

An authorization gives each dataset in its scope a budget ε (``DatasetScope.epsilon``). What has
been spent is kept in three running totals, because the lane releases under three kinds of
guarantee:

- ``epsilon``: pure and approximate DP releases (Laplace noise), added up (basic composition);
- ``rho``: zero-concentrated DP releases (Gaussian noise), added up (zCDP composes additively);
- ``delta``: the δ of thresholded key sets, added up.

The *ε-equivalent* spent is ``epsilon + ε(rho)``, where ε(rho) is OpenDP's conversion of
ρ-zCDP to (ε, δ)-DP (``make_zCDP_to_approxDP`` then ``make_fix_delta``) at ``ZCDP_DELTA``; a
release is refused (``BudgetExhausted``, with what remains) if the ε-equivalent after it would
exceed the authorization's ε, or the δ total (``delta`` plus ``ZCDP_DELTA`` once any ρ is spent)
would exceed ``DELTA_BUDGET``. Sums are rounded up, never down.

Charging is ledger-first and serialized per (authorization, dataset):

1. one transaction locks the budget row (PostgreSQL ``SELECT … FOR UPDATE`` after an
   ``INSERT … ON CONFLICT DO NOTHING``; SQLite takes the database write lock at ``BEGIN
   IMMEDIATE``), so concurrent charges queue and cannot overspend;
2. the check above, against the totals read under the lock;
3. the ``budget.charged`` entry is appended to the ledger; if that fails the transaction is
   rolled back and ``NotRecorded`` raised — nothing is charged and nothing may be released;
4. the new totals and a ``dp_charges`` row (with the ledger index) are committed. Should the
   commit itself fail after the ledger recorded the charge, a ``budget.charge_not_applied``
   entry says so and the release is not made (the ledger then over-states spending, never
   under-states it).

Tables (created on first use, SQLite and PostgreSQL): ``dp_budgets`` and ``dp_charges``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Iterable, Protocol

import opendp.prelude as dp
from sqlalchemy import Float, Integer, String, Text, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hub.catalog.models import UTCDateTime
from hub.catalog.storage import make_engines
from ledger.exceptions import LedgerError
from release_review.dp.calibration import _add_up
from release_review.dp.exceptions import BudgetExhausted, DpError, NotRecorded

ZCDP_DELTA = 1e-7
"""δ at which ρ-zCDP spending is converted to ε (charged once, when any ρ is spent)."""
DELTA_BUDGET = 1e-5
"""Largest total δ one authorization may spend on one dataset."""
TOLERANCE = 1e-12  # relative slack for float noise in comparisons of equal budgets


class LedgerSink(Protocol):
    """Where ledger entries go (``ledger.log.Log`` or its ``Appender``)."""

    def append_many(self, events: Iterable[dict[str, Any]]) -> list[int]: ...


class Base(DeclarativeBase):
    pass


class BudgetRow(Base):
    __tablename__ = "dp_budgets"

    authorization_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(63), primary_key=True)
    epsilon_spent: Mapped[float] = mapped_column(Float, default=0.0)
    rho_spent: Mapped[float] = mapped_column(Float, default=0.0)
    delta_spent: Mapped[float] = mapped_column(Float, default=0.0)
    charges: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ChargeRow(Base):
    __tablename__ = "dp_charges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the release id
    authorization_id: Mapped[str] = mapped_column(String(40), index=True)
    dataset: Mapped[str] = mapped_column(String(63))
    author: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    epsilon: Mapped[float] = mapped_column(Float)
    rho: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    epsilon_equivalent_after: Mapped[float] = mapped_column(Float)
    spec_sha256: Mapped[str] = mapped_column(String(64))
    result_sha256: Mapped[str] = mapped_column(String(64))
    ledger_index: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")


@lru_cache(maxsize=4096)
def zcdp_to_epsilon(rho: float, delta: float = ZCDP_DELTA) -> float:
    """ε such that ρ-zCDP implies (ε, δ)-DP, by OpenDP's conversion (0 for ρ = 0)."""
    if rho <= 0:
        return 0.0
    scale = 1 / math.sqrt(2 * rho)
    space = dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float)
    m = dp.m.make_gaussian(*space, scale=scale)
    while m.map(1.0) < rho:  # the unit-sensitivity Gaussian must spend at least rho
        scale = math.nextafter(scale, 0.0)
        m = dp.m.make_gaussian(*space, scale=scale)
    return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(m), delta).map(1.0)[0]


@dataclass(frozen=True)
class Spent:
    """Running totals of one (authorization, dataset) budget (see module doc)."""

    epsilon: float = 0.0
    rho: float = 0.0
    delta: float = 0.0
    charges: int = 0

    @property
    def epsilon_equivalent(self) -> float:
        return _add_up(self.epsilon, zcdp_to_epsilon(self.rho))

    @property
    def delta_total(self) -> float:
        return _add_up(self.delta, ZCDP_DELTA if self.rho > 0 else 0.0)

    def plus(self, charge: "Charge") -> "Spent":
        return Spent(_add_up(self.epsilon, charge.epsilon), _add_up(self.rho, charge.rho),
                     _add_up(self.delta, charge.delta), self.charges + 1)

    def to_json(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "rho": self.rho, "delta": self.delta,
                "epsilon_equivalent": self.epsilon_equivalent, "delta_total": self.delta_total,
                "charges": self.charges}


@dataclass(frozen=True)
class Charge:
    """What one release spends, and what identifies it."""

    release_id: str
    authorization: str
    dataset: str
    author: str
    at: datetime
    epsilon: float
    rho: float
    delta: float
    spec_sha256: str
    result_sha256: str


@dataclass(frozen=True)
class Receipt:
    ledger_index: int
    before: Spent
    after: Spent
    total: float  # the authorization's ε for the dataset

    @property
    def remaining(self) -> float:
        return max(0.0, self.total - self.after.epsilon_equivalent)


def remaining_of(total: float, spent: Spent) -> float:
    return max(0.0, total - spent.epsilon_equivalent)


EntryBuilder = Callable[[Spent, Spent], dict[str, Any]]


class BudgetStore:
    """Budgets in the control database; every charge ledger-first (see module doc)."""

    def __init__(self, url: str, ledger: LedgerSink):
        self.url = url
        self.ledger = ledger
        self.writer, self.reader = make_engines(url)
        self._created = False
        self._create_lock = threading.Lock()

    def create(self) -> None:
        """Create the tables if missing (idempotent; also done on first use)."""
        with self._create_lock:
            if not self._created:
                Base.metadata.create_all(self.writer)
                self._created = True

    def close(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()

    def spent(self, authorization: str, dataset: str) -> Spent:
        self.create()
        with self.reader.connect() as conn, conn.begin():
            row = conn.execute(select(BudgetRow.__table__).where(
                BudgetRow.authorization_id == authorization,
                BudgetRow.dataset == dataset)).mappings().first()
        return _spent(row)

    def charges(self, authorization: str, dataset: str | None = None) -> list[dict[str, Any]]:
        """The charges of an authorization (optionally one dataset), oldest first."""
        self.create()
        q = select(ChargeRow.__table__).where(ChargeRow.authorization_id == authorization)
        if dataset is not None:
            q = q.where(ChargeRow.dataset == dataset)
        with self.reader.connect() as conn, conn.begin():
            return [dict(r) for r in conn.execute(q.order_by(ChargeRow.at, ChargeRow.id)).mappings()]

    def check(self, charge: Charge, total: float) -> Spent:
        """Refuse early, before any computation, if `charge` cannot fit (no lock, no change)."""
        before = self.spent(charge.authorization, charge.dataset)
        _check_fits(charge, before, total)
        return before

    def charge(self, charge: Charge, total: float, make_entry: EntryBuilder) -> Receipt:
        """Charge `charge` against `total` (see module doc); returns the ledger index and totals."""
        self.create()
        with self.writer.connect() as conn:
            trans = conn.begin()
            try:
                before = self._lock_row(conn, charge)
                _check_fits(charge, before, total)
                after = before.plus(charge)
                entry = make_entry(before, after)
                try:
                    index = self.ledger.append_many([entry])[0]
                except LedgerError as e:
                    raise NotRecorded(
                        f"the ledger could not record budget.charged, so nothing was charged or "
                        f"released: {e}") from e
                self._store(conn, charge, after, index)
            except BaseException:
                trans.rollback()
                raise
            try:
                trans.commit()
            except SQLAlchemyError as e:
                self._not_applied(entry, index, e)
                raise NotRecorded(
                    f"the database did not commit the charge (ledger entry {index} was recorded "
                    "and a budget.charge_not_applied entry now says it did not take effect); "
                    "nothing was released") from e
        return Receipt(index, before, after, total)

    def record_refusal(self, entry: dict[str, Any]) -> None:
        """Best effort: a refusal stands whether or not the ledger can record it."""
        try:
            self.ledger.append_many([entry])
        except LedgerError:
            pass

    # --- internals ------------------------------------------------------------------------

    def _lock_row(self, conn: Any, charge: Charge) -> Spent:
        key = {"authorization_id": charge.authorization, "dataset": charge.dataset}
        values = {**key, "epsilon_spent": 0.0, "rho_spent": 0.0, "delta_spent": 0.0,
                  "charges": 0, "updated_at": None}
        dialect = conn.dialect.name
        table = BudgetRow.__table__
        if dialect == "postgresql":
            conn.execute(postgresql.insert(table).values(**values).on_conflict_do_nothing())
        elif dialect == "sqlite":
            conn.execute(sqlite.insert(table).values(**values).on_conflict_do_nothing())
        else:  # pragma: no cover - the control database is SQLite or PostgreSQL
            raise DpError(f"unsupported control database {dialect}")
        q = select(table).where(table.c.authorization_id == charge.authorization,
                                table.c.dataset == charge.dataset)
        if dialect == "postgresql":
            q = q.with_for_update()
        return _spent(conn.execute(q).mappings().first())

    @staticmethod
    def _store(conn: Any, charge: Charge, after: Spent, index: int) -> None:
        table = BudgetRow.__table__
        conn.execute(update(table).where(
            table.c.authorization_id == charge.authorization,
            table.c.dataset == charge.dataset).values(
            epsilon_spent=after.epsilon, rho_spent=after.rho, delta_spent=after.delta,
            charges=after.charges, updated_at=charge.at))
        conn.execute(insert(ChargeRow.__table__).values(
            id=charge.release_id, authorization_id=charge.authorization, dataset=charge.dataset,
            author=charge.author, at=charge.at, epsilon=charge.epsilon, rho=charge.rho,
            delta=charge.delta, epsilon_equivalent_after=after.epsilon_equivalent,
            spec_sha256=charge.spec_sha256, result_sha256=charge.result_sha256,
            ledger_index=index, note=""))

    def _not_applied(self, entry: dict[str, Any], index: int, error: Exception) -> None:
        note = {k: v for k, v in entry.items() if k not in ("type", "details")}
        note["type"] = "budget.charge_not_applied"
        note["details"] = {"entry": index, "release": entry.get("details", {}).get("release"),
                           "error": type(error).__name__}
        self.record_refusal(note)


def _spent(row: Any) -> Spent:
    if row is None:
        return Spent()
    return Spent(row["epsilon_spent"], row["rho_spent"], row["delta_spent"], row["charges"])


def _check_fits(charge: Charge, before: Spent, total: float) -> None:
    after = before.plus(charge)
    remaining = remaining_of(total, before)
    requested = after.epsilon_equivalent - before.epsilon_equivalent
    if after.epsilon_equivalent > total * (1 + TOLERANCE):
        raise BudgetExhausted(
            f"privacy budget exhausted for dataset {charge.dataset} under authorization "
            f"{charge.authorization}: this release needs ε ≈ {requested:.6g} "
            f"({_describe(charge)}), {remaining:.6g} of {total:g} remains",
            remaining=remaining, requested=requested, total=total)
    if after.delta_total > DELTA_BUDGET:
        raise BudgetExhausted(
            f"δ budget exhausted for dataset {charge.dataset} under authorization "
            f"{charge.authorization}: δ would reach {after.delta_total:.3g}, more than "
            f"{DELTA_BUDGET:g}; ε remaining {remaining:.6g} of {total:g}",
            remaining=remaining, requested=requested, total=total)


def _describe(charge: Charge) -> str:
    parts = []
    if charge.epsilon:
        parts.append(f"epsilon {charge.epsilon:g}")
    if charge.rho:
        parts.append(f"rho {charge.rho:g} as zCDP at delta {ZCDP_DELTA:g}")
    if charge.delta:
        parts.append(f"delta {charge.delta:.3g}")
    return ", ".join(parts)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
