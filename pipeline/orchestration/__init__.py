"""Running the stages under an external orchestrator (SPEC §10.6).

``pipeline.orchestration.dagster`` needs the ``dagster`` extra
(``pip install -e ".[dagster]"``); nothing else in the package imports it, so
the core install never needs Dagster.
"""
