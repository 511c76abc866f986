"""Python checks of the ``benefit_payments`` dataset, on top of its config.

A payment's ``payment_date`` must fall inside the month of the file it was
delivered in (``benefit_payments_2025-07.csv`` holds July 2025 payments only).
The rule needs the file's period, which the config cannot express, so it
lives here; ``pipeline.domain.schema.build_schema`` calls :func:`extend_schema`
with the period and each failing row is logged against ``payment_date``.
"""
from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from pipeline.domain.period import Period


def payment_in_period(period: str) -> pa.Check:
    month = Period.of(period)
    start, end = pd.Timestamp(month.start), pd.Timestamp(month.next().start)
    # Nulls are left to the column's nullable rule (pandera drops them first).
    # pandera reports a check's ``error`` text (else its name) as the check:
    # it becomes the check column of meta.validation_errors.
    label = f"in period {period}"
    return pa.Check(lambda s: (s >= start) & (s < end), name=label, error=label)


def extend_schema(schema: pa.DataFrameSchema, period: str) -> pa.DataFrameSchema:
    """The config's schema plus the in-period rule on ``payment_date``."""
    column = schema.columns["payment_date"]
    return schema.update_column("payment_date", checks=[*column.checks, payment_in_period(period)])
