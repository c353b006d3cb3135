"""Pipeline configuration: JSON file -> schema -> semantic checks -> Config model."""
from .fields import FIELDS, OPERATIONS, SETTABLE
from .loader import check_schema, load_config, load_schema, schema_path
from .model import (Actions, Config, Entry, Fwd, MatchField, MatchValue, MissPolicy, Pipe, Port, Session,
                    SessionMember, SetExpr)

__all__ = ["load_config", "load_schema", "schema_path", "check_schema", "Config", "Port", "Pipe", "Entry",
           "Fwd", "MatchField", "MatchValue", "Actions", "Session", "SessionMember", "MissPolicy", "SetExpr",
           "FIELDS", "SETTABLE", "OPERATIONS"]
