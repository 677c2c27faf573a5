"""Task domains (math, code), their graders, benchmark adapters and the synthetic suite."""

from metaagentx.tasks.base import Grade, Task, TestCase
from metaagentx.tasks.code import CodeGrade, extract_program, grade_program
from metaagentx.tasks.datasets import (
    REGISTRY,
    LoadResult,
    check_tasks,
    data_dir,
    load_tasks,
    load_tasks_report,
    show_tasks,
)
from metaagentx.tasks.errors import DatasetError
from metaagentx.tasks.math import extract_answer, is_equivalent
from metaagentx.tasks.synthetic import FAMILIES, generate, synthetic_suite

__all__ = [
    "FAMILIES",
    "REGISTRY",
    "CodeGrade",
    "DatasetError",
    "Grade",
    "LoadResult",
    "Task",
    "TestCase",
    "check_tasks",
    "data_dir",
    "extract_answer",
    "extract_program",
    "generate",
    "grade_program",
    "is_equivalent",
    "load_tasks",
    "load_tasks_report",
    "show_tasks",
    "synthetic_suite",
]
