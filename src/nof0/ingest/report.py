"""What an ingest run did: accepted (changed the store), duplicates (already stored), rejected."""

from __future__ import annotations

from dataclasses import dataclass, field

from nof0.ingest.decode import Rejection

__all__ = ["IngestReport"]


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> outcome -> count

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    def count(self, event_type: str | None, outcome: str, n: int) -> None:
        if not n:
            return
        setattr(self, outcome, getattr(self, outcome) + n)
        per = self.by_type.setdefault(event_type or "unknown", {})
        per[outcome] = per.get(outcome, 0) + n

    def reject(self, rejection: Rejection) -> None:
        self.rejections.append(rejection)
        self.count(rejection.event_type, "rejected", 1)

    def merge(self, other: "IngestReport") -> "IngestReport":
        for event_type, outcomes in other.by_type.items():
            for outcome, n in outcomes.items():
                self.count(event_type, outcome, n)
        self.rejections.extend(other.rejections)
        return self

    def summary(self) -> str:
        return f"accepted {self.accepted}, duplicates {self.duplicates}, rejected {self.rejected}"
