"""Config loading: every shipped config validates; broken configs say where and what."""
from __future__ import annotations

import json
import pathlib

import jsonschema
import pytest

from pyflow.config import FIELDS, OPERATIONS, SETTABLE, load_config, load_schema
from pyflow.errors import ConfigError

REPO = pathlib.Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
BAD = pathlib.Path(__file__).resolve().parent / "bad_configs"
SHIPPED = sorted(p for p in CONF.glob("*.json") if p.name != "schema.json")
EXPECTED = json.loads((BAD / "expected.json").read_text())


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(load_schema())


def test_schema_lists_exactly_the_model_fields():
    defs = load_schema()["$defs"]
    assert defs["field"]["enum"] == list(FIELDS)
    assert set(defs["actions"]["properties"]) == SETTABLE | set(OPERATIONS)


def test_installed_schema_matches_source_tree():
    from pyflow.config.loader import schema_path

    assert json.loads(schema_path().read_text()) == json.loads((CONF / "schema.json").read_text())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_validates(path):
    raw = json.loads(path.read_text())
    jsonschema.Draft202012Validator(load_schema()).validate(raw)
    cfg = load_config(path)
    assert cfg.root_pipe.root and len(cfg.ports) >= 2
    assert sum(len(p.entries) for p in cfg.pipes) >= 1


def test_every_example_has_a_config():
    names = {p.stem for p in SHIPPED}
    assert {"resubmit", "static-forward", "psa-clone-e2e", "broadcast", "ebpf-cast", "mpls-encap"} <= names


def test_resubmit_model():
    cfg = load_config(CONF / "resubmit.json")
    assert [(p.name, p.id) for p in cfg.ports] == [("uplink", 0), ("vf0", 1)]
    root = cfg.root_pipe
    assert root.name == "root" and root.match_names() == ["meta.port"]
    assert [(e.name, e.match["meta.port"].value, str(e.fwd)) for e in root.entries] == [
        ("root_net_to_host", 0, "pipe:n2h"), ("root_host_to_net_vf0", 1, "pipe:h2n")]
    h2n = cfg.pipe("h2n")
    assert (h2n.domain, str(h2n.fwd), str(h2n.fwd_miss), h2n.actions) == ("egress", "port:uplink", "miss", ["ipv4.dst"])
    (mp,) = cfg.miss_policies
    assert (mp.pipe, mp.install, mp.match, mp.max_flows, mp.entry_name) == ("h2n", "h2n", ["ipv4.src"], 256,
                                                                            "{ipv4.src}-flow")
    expr = mp.sets["ipv4.dst"]
    assert (expr.op, expr.src_field, expr.value) == ("field_add", "ipv4.src", 0x01010101)


def test_load_from_dict_equals_load_from_file():
    raw = json.loads((CONF / "resubmit.json").read_text())
    assert load_config(raw).pipe_ids() == load_config(CONF / "resubmit.json").pipe_ids()


def test_corpus_is_large_enough():
    assert len(EXPECTED) + 1 >= 25
    assert {p.name for p in BAD.glob("*.json")} - {"expected.json", "syntax_error.json"} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=lambda n: n[:-5])
def test_bad_config(name):
    want = EXPECTED[name]
    with pytest.raises(ConfigError) as info:
        load_config(BAD / name)
    err = info.value
    assert err.path == want["path"], str(err)
    for word in want["words"]:
        assert word in err.message, f"{word!r} not in {err.message!r}"
    assert "\n" not in str(err)


def test_json_syntax_error_has_line_and_column():
    with pytest.raises(ConfigError) as info:
        load_config(BAD / "syntax_error.json")
    assert "syntax_error.json:4:3: invalid JSON: Expecting value" in str(info.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(BAD / "no-such-config.json")


def test_top_level_must_be_object(tmp_path):
    p = tmp_path / "list.json"
    p.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_config(p)


def test_values_are_normalised():
    cfg = load_config(CONF / "mpls-encap.json")
    lpm = cfg.pipe("dst_lpm")
    e = {x.name: x for x in lpm.entries}
    assert (e["lpm_10"].match["ipv4.dst"].value, e["lpm_10"].match["ipv4.dst"].prefixlen) == (0x0A000000, 8)
    assert e["lpm_10_3_3_3"].match["ipv4.dst"].prefixlen == 32
    wcmp = cfg.pipe("wcmp")
    assert [x.weight for x in wcmp.entries] == [70, 30]
    assert wcmp.entries[1].actions.push_mpls == [201007, 201003]
    cast = load_config(CONF / "ebpf-cast.json")
    thin = cast.pipe("video").entries[0]
    assert thin.match["mpegts.frame"].value == 2 and thin.actions.drop_pct == 30


def test_the_compiled_schema_validator_agrees_with_jsonschema():
    """check_schema trusts the compiled validator's 'valid': it must never accept what jsonschema refuses."""
    import copy
    import random

    from pyflow.config.loader import _fast_validator, _validator

    def parsed(p):
        try:
            return json.loads(p.read_text())
        except json.JSONDecodeError:
            return None     # the corpus' JSON syntax errors never reach the schema

    docs = [d for d in map(parsed, sorted(BAD.glob("*.json"))) if d is not None]
    conf = pathlib.Path(__file__).resolve().parents[2] / "conf"
    docs += [json.loads(p.read_text()) for p in sorted(conf.glob("*.json")) if p.name != "schema.json"]
    rng = random.Random(7)
    junk = [None, True, -1, 2**40, "x", "10.0.0.300", [], {}, 1.5]
    for base in list(docs):
        for _ in range(40):
            doc = copy.deepcopy(base)
            node = doc
            for _ in range(rng.randint(1, 4)):     # walk down to a random container, then break one value
                kids = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
                kids = [(k, v) for k, v in kids if isinstance(v, (dict, list)) and v]
                if not kids:
                    break
                node = rng.choice(kids)[1]
            if isinstance(node, dict) and node:
                node[rng.choice(list(node))] = rng.choice(junk)
            elif isinstance(node, list) and node:
                node[rng.randrange(len(node))] = rng.choice(junk)
            docs.append(doc)
    for doc in docs:
        assert _fast_validator().is_valid(doc) == (next(_validator().iter_errors(doc), None) is None), doc
