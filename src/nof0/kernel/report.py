"""What an ingest run did: accepted (changed the store), duplicates (already stored), rejected, and
which models' facts changed per event type (what a one-off process refreshes afterwards)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nof0.kernel.decode import Rejection

__all__ = ["IngestReport"]


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> outcome -> count
    models: dict[str, set[str]] = field(default_factory=dict)  # type -> models whose facts it changed

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    @property
    def changed_types(self) -> set[str]:
        """The event types that changed the store."""
        return {t for t, outcomes in self.by_type.items() if outcomes.get("accepted")}

    def models_changed_by(self, event_types: set[str] | frozenset[str]) -> set[str]:
        return set().union(*(ids for t, ids in self.models.items() if t in event_types))

    def count(self, event_type: str | None, outcome: str, n: int) -> None:
        if not n:
            return
        setattr(self, outcome, getattr(self, outcome) + n)
        per = self.by_type.setdefault(event_type or "unknown", {})
        per[outcome] = per.get(outcome, 0) + n

    def touch(self, event_type: str, model_ids: set[str]) -> None:
        if model_ids:
            self.models.setdefault(event_type, set()).update(model_ids)

    def reject(self, rejection: Rejection) -> None:
        self.rejections.append(rejection)
        self.count(rejection.event_type, "rejected", 1)

    def merge(self, other: "IngestReport") -> "IngestReport":
        for event_type, outcomes in other.by_type.items():
            for outcome, n in outcomes.items():
                self.count(event_type, outcome, n)
        for event_type, ids in other.models.items():
            self.touch(event_type, ids)
        self.rejections.extend(other.rejections)
        return self

    def summary(self) -> str:
        return f"accepted {self.accepted}, duplicates {self.duplicates}, rejected {self.rejected}"
