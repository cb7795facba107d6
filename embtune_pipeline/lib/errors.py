"""Input problems that name the file, the row and what is wrong."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class RowProblem:
    file: str
    row: str  # "line 12" for text files, "row 12" for Parquet, "-" for the whole file
    problem: str

    def __str__(self) -> str:
        return f"{self.file}, {self.row}: {self.problem}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def at(cls, provenance: str, problem: str) -> "RowProblem":
        """A problem with a row known by its provenance string, "<file>:<row>"."""
        file, _, row = provenance.rpartition(":")
        return cls(file or provenance, row if file else "-", problem)


class InputError(ValueError):
    """Bad input; lists up to 20 problems, each with file and row."""

    def __init__(self, problems: list[RowProblem], hint: str = ""):
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        tail = f"\n{hint}" if hint else ""
        super().__init__(f"{len(self.problems)} problem(s) in the input:\n{shown}{more}{tail}")


def file_problem(path: Path | str, problem: str) -> InputError:
    return InputError([RowProblem(str(path), "-", problem)])
