"""Realistic sample deliveries for the shipped datasets (``python -m pipeline demo``).

A small municipal citizen register that changes month to month (people move
in, move away, earn more or less) and the benefit payments made to them.
Deterministic for a seed. ``with_bad_files`` adds the faulty deliveries an
analyst really receives: a misnamed file, a file missing a column, a file
with a few invalid rows.
"""
from __future__ import annotations

import calendar
import csv
import datetime as dt
import random
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.domain.period import month_sequence

FIRST_NAMES = [
    "Anna", "Lars", "Maria", "Jonas", "Sofia", "Erik", "Elena", "Mikael", "Ingrid", "Ahmed",
    "Fatima", "Olof", "Karin", "Nils", "Leila", "Johan", "Astrid", "Omar", "Sara", "Peter",
    "Linnea", "Hugo", "Amira", "Gustav", "Maja", "Emil", "Noor", "Axel", "Ebba", "Viktor",
]
LAST_NAMES = [
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
    "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Hassan", "Lindberg", "Berg", "Lund",
    "Holm", "Ali", "Sandberg", "Forsberg", "O'Connor", "Nyström", "Åberg", "Ek",
]
# Four-digit codes, several with leading zeros (the classic Excel pitfall).
MUNICIPALITIES = ["0114", "0219", "0305", "0480", "0512", "0687", "1080", "1280", "1480", "2480"]
BENEFITS = {
    "child_benefit": (125.0, 0.0),
    "housing_allowance": (180.0, 120.0),
    "unemployment": (650.0, 400.0),
    "disability": (900.0, 300.0),
    "pension_supplement": (310.0, 150.0),
}
CITIZEN_HEADERS = {
    "citizen_id": "Citizen ID", "first_name": "First Name", "last_name": "Last Name",
    "birth_date": "Birth Date", "sex": "Sex", "municipality_code": "Municipality Code",
    "household_id": "Household ID", "monthly_income": "Monthly Income",
}
PAYMENT_HEADERS = {
    "payment_id": "Payment ID", "citizen_id": "Citizen ID", "benefit_type": "Benefit Type",
    "amount": "Amount", "payment_date": "Payment Date", "booked_at": "Booked At",
    "is_correction": "Is Correction",
}


@dataclass(frozen=True)
class Citizen:
    citizen_id: int
    first_name: str
    last_name: str
    birth_date: dt.date
    sex: str
    municipality_code: str
    household_id: int
    monthly_income: float | None


def _income(rng: random.Random, birth: dt.date, on: dt.date) -> float | None:
    age = (on - birth).days // 365
    if age < 16:
        return 0.0
    if rng.random() < 0.03:
        return None  # not reported
    base = 900 if age >= 67 else 2600
    return round(rng.lognormvariate(0, 0.45) * base, 2)


def _new_citizen(rng: random.Random, cid: int, on: dt.date) -> Citizen:
    birth = dt.date(rng.randint(1935, on.year - 1), rng.randint(1, 12), rng.randint(1, 28))
    first = rng.choice(FIRST_NAMES)
    # Some registers deliver names in odd case or with stray spaces; the
    # transform cleans them, the raw stage keeps them as delivered.
    if rng.random() < 0.05:
        first = f" {first.lower()} "
    return Citizen(
        citizen_id=cid,
        first_name=first,
        last_name=rng.choice(LAST_NAMES),
        birth_date=birth,
        sex=rng.choices(["F", "M", "X"], weights=[49, 49, 2])[0],
        municipality_code=rng.choice(MUNICIPALITIES),
        household_id=rng.randint(50_000, 50_000 + cid // 2),
        monthly_income=_income(rng, birth, on),
    )


def _registers(rng: random.Random, periods: list[str], rows: int) -> dict[str, list[Citizen]]:
    """Month by month: about 2 % move away, as many move in, incomes drift."""
    first_day = dt.date.fromisoformat(periods[0] + "-01")
    population = [_new_citizen(rng, 100_000 + i, first_day) for i in range(rows)]
    next_id = 100_000 + rows
    out = {}
    for period in periods:
        on = dt.date.fromisoformat(period + "-01")
        if period != periods[0]:
            population = [c for c in population if rng.random() > 0.02]
            while len(population) < rows + rng.randint(-rows // 50, rows // 50):
                population.append(_new_citizen(rng, next_id, on))
                next_id += 1
            population = [
                replace(c, monthly_income=round(c.monthly_income * rng.uniform(0.97, 1.04), 2))
                if c.monthly_income else c
                for c in population
            ]
        out[period] = list(population)
    return out


def write_citizens_xlsx(path: Path, citizens: list[Citizen], sheet: str = "citizens") -> None:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append(list(CITIZEN_HEADERS.values()))
    for c in citizens:
        ws.append([c.citizen_id, c.first_name, c.last_name, c.birth_date, c.sex,
                   c.municipality_code, c.household_id, c.monthly_income])
    tmp = path.with_name(path.name + ".tmp")
    wb.save(tmp)
    tmp.replace(path)


def _payments(rng: random.Random, period: str, citizens: list[Citizen], first_id: int) -> list[dict]:
    year, month = map(int, period.split("-"))
    last = calendar.monthrange(year, month)[1]
    rows = []
    pid = first_id
    for c in citizens:
        if rng.random() > 0.35:
            continue
        age = (dt.date(year, month, 1) - c.birth_date).days // 365
        kinds = ["housing_allowance", "disability"]
        kinds += ["pension_supplement"] if age >= 65 else ["unemployment", "child_benefit"]
        kind = rng.choice(kinds)
        mean, spread = BENEFITS[kind]
        day = dt.date(year, month, rng.choice([5, 15, 25, min(28, last)]))
        rows.append({
            "payment_id": pid,
            "citizen_id": c.citizen_id if rng.random() > 0.01 else c.citizen_id + 900_000,
            "benefit_type": kind,
            "amount": round(max(10.0, rng.gauss(mean, spread / 3 or 1)), 2),
            "payment_date": day.isoformat(),
            "booked_at": dt.datetime(year, month, day.day, rng.randint(6, 18), rng.randint(0, 59)).isoformat(sep=" "),
            "is_correction": "true" if rng.random() < 0.02 else "false",
        })
        pid += 1
    return rows


def write_payments_csv(path: Path, rows: list[dict], headers: dict[str, str] = PAYMENT_HEADERS) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers.values())
        for row in rows:
            writer.writerow([row[k] for k in headers])
    tmp.replace(path)


def write_demo(
    landed_dir: Path,
    *,
    months: int = 6,
    start: str = "2025-01",
    rows: int = 400,
    seed: int = 2025,
    with_bad_files: bool = False,
) -> list[Path]:
    """Write the demo deliveries into ``landed_dir`` and return their paths."""
    rng = random.Random(seed)
    landed_dir.mkdir(parents=True, exist_ok=True)
    periods = month_sequence(start, months + (1 if with_bad_files else 0))
    good, extra = periods[:months], periods[months:]
    registers = _registers(rng, periods, rows)
    written: list[Path] = []
    next_payment = 1
    for period in good:
        path = landed_dir / f"citizens_{period}.xlsx"
        write_citizens_xlsx(path, registers[period])
        written.append(path)
        payments = _payments(rng, period, registers[period], next_payment)
        next_payment += len(payments) + 1
        path = landed_dir / f"benefit_payments_{period}.csv"
        write_payments_csv(path, payments)
        written.append(path)

    if with_bad_files:
        bad_period = extra[0]
        # 1. a misnamed delivery
        path = landed_dir / "citizens_june_final(2).xlsx"
        write_citizens_xlsx(path, registers[good[-1]][:20])
        written.append(path)
        # 2. a delivery missing a column
        path = landed_dir / f"benefit_payments_{bad_period}.csv"
        headers = {k: v for k, v in PAYMENT_HEADERS.items() if k != "amount"}
        write_payments_csv(path, _payments(rng, bad_period, registers[bad_period], next_payment), headers)
        written.append(path)
        # 3. a delivery with a few invalid rows (citizens rejects the file)
        broken = list(registers[bad_period])
        broken[3] = replace(broken[3], sex="Q")
        broken[10] = replace(broken[10], monthly_income=-120.0)
        broken[17] = replace(broken[17], municipality_code="12A4")
        path = landed_dir / f"citizens_{bad_period}.xlsx"
        write_citizens_xlsx(path, broken)
        written.append(path)
    return written
