"""Cold-start SFT: teacher data for the designer and executor roles, then supervised training.

`ProgrammaticTeacher` writes designs and agent turns for the built-in synthetic suite offline;
collection and training (issue 6, items 2-3) build on any `Generator`, this one included.
"""

from metaagentx.sft.problems import Problem, UnsupportedTaskError, parse_problem
from metaagentx.sft.teacher import (
    DEFAULT_DESIGN_MIX,
    PATTERN_DOMAINS,
    TEACHER_DESIGNS_DIR,
    ProgrammaticTeacher,
    designer_reply,
    teacher_designs,
)

__all__ = [
    "DEFAULT_DESIGN_MIX",
    "PATTERN_DOMAINS",
    "TEACHER_DESIGNS_DIR",
    "Problem",
    "ProgrammaticTeacher",
    "UnsupportedTaskError",
    "designer_reply",
    "parse_problem",
    "teacher_designs",
]
