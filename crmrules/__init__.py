"""crmrules: a rules engine for e-commerce customer operations."""

from crmrules.api import RuleSet, RunResult, Segment, TestResult, load, load_text
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.resources import Resources, limits
from crmrules.errors import (
    CrmRulesError,
    DataError,
    EvaluationError,
    InternalError,
    RuleSyntaxError,
    RuleTypeError,
    SchemaError,
    UnknownNameError,
    UnsupportedFeatureError,
)
from crmrules.schema import Schema, default_schema, load_schema

__version__ = "0.1.0"

__all__ = [
    "CrmRulesError", "DataError", "EvaluationError", "InternalError", "Resources", "RuleSet", "RuleSyntaxError",
    "RuleTypeError", "RunResult", "Schema", "SchemaError", "Segment", "TestResult", "UnknownNameError",
    "UnsupportedFeatureError", "default_schema", "limits", "load", "load_schema", "load_text", "prepare_customer",
]
