"""The seed policy of a run among many: its part of a split, the run seed of the fleet profile, the
example database, and the seed each item draws from (`Run.seed`). The pytest plugin builds one `Run` per
process from its options (`Run.from_config`) and asks it for each item's seed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class Run:
    """What one run among many needs: its part of a split (`bertcheck.run.split`), the run seed of the
    fleet profile, and the example database (`bertcheck.run.database`)."""

    part: object = None  # bertcheck.run.split.Part, or None: the whole run
    run_seed: str = "0"  # BERTCHECK_SEED
    database: object = None  # hypothesis ExampleDatabase, or None: the profile's own
    db_url: str | None = None  # redacted, for the header
    fresh: str = field(default_factory=lambda: os.urandom(8).hex())  # this process's salt for fresh draws

    @classmethod
    def from_config(cls, config) -> Run:
        from bertcheck.run import database, split

        text = config.getoption("bert_split") or os.environ.get("BERTCHECK_SPLIT")
        url = config.getoption("bert_db") or os.environ.get("BERTCHECK_DB") or None
        readonly = config.getoption("bert_db_readonly")
        if readonly is None:
            readonly = os.environ.get("BERTCHECK_DB_READONLY", "") not in ("", "0")
        run = cls(split.Part.parse(text) if text else None, os.environ.get("BERTCHECK_SEED", "0"))
        if url:
            run.database = database.layered(url, readonly)
            run.db_url = database.redact(url) + (" (read-only)" if readonly else "")
        return run

    def about(self) -> dict:
        """What a report of this run says of it (never the database's password)."""
        from bertcheck.inputs.profiles import current_profile

        return {
            "part": str(self.part) if self.part else None,
            "profile": current_profile(),
            "seed": self.run_seed if current_profile() == "fleet" else None,
            "database": self.db_url,
        }

    def seed(self, item, settings) -> int | None:
        """The seed of `item`, or None for Hypothesis's own (a lone item under dev). One per unit
        (`bertcheck.run.scheduling.unit_of`): the read-only properties of one model and shard draw the
        same inputs and share forwards.

        - fleet profile: a function of the unit, the run seed and the part, so each part, and each
          night's run, draws its own;
        - derandomized profiles (ci, thorough): a function of the unit alone, the same on every machine
          and every part of a split, with or without a database (Hypothesis gives derandomized runs
          none: with one, the run is not derandomized and this seed keeps it reproducible). Never
          Hypothesis's own derandomized seed: that is a digest of the test function, the same for
          every shard and model of a property, and shards 1 and 3 (both float32) drew 6 of their 7
          inputs alike, 870 of the 2,856 inputs of a `ci` run a repeat of one its property and model
          had already run;
        - dev: fresh inputs every run; a group's items still draw the same ones, from a seed drawn once
          per process (the unit runs in one process)."""
        from bertcheck.run import split
        from bertcheck.inputs.profiles import current_profile
        from bertcheck.run.scheduling import shared, unit_of

        unit = unit_of(item.nodeid)
        if current_profile() == "fleet":
            return split.seed(unit, f"{self.run_seed} {self.part or '1/1'}")
        if not settings.derandomize:
            return split.seed(unit, self.fresh) if unit != item.nodeid else None
        if unit != item.nodeid:  # a group: the seed the one-forward group's items have always had
            return split.seed(shared(item.nodeid), "one forward")
        return split.seed(unit, "derandomized")
