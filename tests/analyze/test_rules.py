"""The rule library: metadata convention, examples, third-party folders, digest, ``fwtriage rules``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yara

from pipeline.analyze.rule_tests import load_examples, run_rule_tests
from pipeline.analyze.ruleset import Ruleset, compile_ruleset, convention_problems
from pipeline.analyze.ruleset import ruleset as shared_ruleset
from pipeline.config import RULES_DIR, Detection

README = RULES_DIR / "README.md"


@pytest.fixture(scope="module")
def ours() -> Ruleset:
    return compile_ruleset(Detection())


def _lab(root: Path) -> Path:
    """A third-party collection as labs clone them: an include, externals, a broken file, a module we lack."""
    lab = root / "lab-rules"
    (lab / "common").mkdir(parents=True)
    (lab / ".git").mkdir()
    (lab / "common" / "strings.yar").write_text(
        'rule shared_marker { strings: $m = "LAB-MARKER" condition: $m }\n')
    (lab / "by_name.yar").write_text(
        'include "common/strings.yar"\n'
        'rule named_syncd { meta: description = "a file called syncd" severity = "high"\n'
        '  condition: filename == "syncd" and extension == "" and filepath startswith "/usr/" }\n')
    (lab / "by_hash.yara").write_text(
        'rule known_md5 { meta: description = "a known file" score = 80\n'
        '  condition: md5 == "5d41402abc4b2a76b9719d911017c592" }\n')  # md5("hello")
    (lab / "broken.yar").write_text('rule broken { strings: $a = "x" condition: $a and\n')
    (lab / "needs_magic.yar").write_text('import "magic"\nrule m { condition: magic.mime_type() == "x" }\n')
    (lab / ".git" / "hooks.yar").write_text("this is not yara\n")
    (lab / "notes.txt").write_text("not a rule file\n")
    return lab


# --- our library -------------------------------------------------------------------------------


def test_every_rule_keeps_the_metadata_convention(ours: Ruleset) -> None:
    problems = {meta.id: convention_problems(meta) for meta in ours.metadata.values()}
    assert {rule: found for rule, found in problems.items() if found} == {}


def test_rule_ids_are_unique_and_the_library_is_a_meaningful_size(ours: Ruleset) -> None:
    ids = [meta.id for meta in ours.metadata.values()]
    assert len(ids) == len(set(ids))
    assert 40 <= len(ids) <= 80
    assert {source.namespace for source in ours.sources} == {
        "android", "encoded", "execution", "families", "featurephone", "infrastructure", "network",
        "persistence", "telephony"}
    assert ours.skipped == () and ours.warnings == () and ours.third_party == {}


def test_every_attack_technique_used_is_listed_in_the_readme(ours: Ruleset) -> None:
    listed = set(re.findall(r"^\| (T\d{4}(?:\.\d{3})?) \|", README.read_text(), re.MULTILINE))
    used = {technique for meta in ours.metadata.values() for technique in meta.mitre}
    assert used - listed == set()


def test_family_rules_name_their_family_and_cite_a_report(ours: Ruleset) -> None:
    families = {meta.id: (meta.family, meta.severity, meta.reference.startswith("https://"))
                for meta in ours.metadata.values() if meta.category == "family"}
    assert families == {
        "families.adups_fota_client": ("adups", "high", True),
        "families.adups_command_receiver": ("adups", "high", True),
        "families.adups_collection_host": ("adups", "high", True),
        "families.ragentek_ota_hosts": ("ragentek", "high", True),
        "families.ragentek_debugs_agent": ("ragentek", "high", True),
        "families.triada_module_files": ("triada", "high", True),
        "families.triada_runtime_loader": ("triada", "high", True),
    }


@pytest.mark.parametrize("path", sorted(RULES_DIR.glob("*.yar")), ids=lambda p: p.name)
def test_our_rule_files_compile_without_any_warning(path: Path) -> None:
    yara.compile(filepath=str(path), error_on_warning=True)  # raises yara.WarningError on a slow string


def test_every_rule_has_examples_of_both_kinds_and_passes_them(ours: Ruleset) -> None:
    reports = run_rule_tests(ours, RULES_DIR / "tests")
    assert {r.rule_id for r in reports} == set(ours.by_id)
    assert all(r.positives >= 1 and r.negatives >= 1 for r in reports)
    failing = {r.rule_id: (r.problems, [e.label for e in r.failures]) for r in reports if not r.passed}
    assert failing == {}


def test_the_example_runner_reports_what_is_wrong(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "tests").mkdir(parents=True)
    meta = ('title = "t" category = "property" severity = "info" confidence = "high" data = "" channel = "" '
            'mitre = "" description = "d" reference = "https://example.org/"')
    (rules / "demo.yar").write_text(
        f'rule good {{ meta: id = "demo.good" {meta} strings: $a = "GOOD" condition: $a }}\n'
        f'rule wrong {{ meta: id = "demo.wrong" {meta} strings: $a = "WRONG" condition: $a }}\n'
        f'rule untested {{ meta: id = "demo.nope" {meta} category = "sideways" condition: false }}\n')
    (rules / "tests" / "demo.yml").write_text(
        "demo.good: {positive: [GOOD], negative: [BAD]}\n"
        "demo.wrong: {positive: [WRONG], negative: [WRONG again]}\n"
        "demo.gone: {positive: [x], negative: [y]}\n")
    reports = {r.rule_id: r for r in run_rule_tests(compile_ruleset(Detection(rules_dir=rules)), rules / "tests")}
    assert {rule: r.passed for rule, r in reports.items()} == {
        "demo.good": True, "demo.wrong": False, "demo.nope": False, "demo.gone": False}
    assert [(e.positive, e.data) for e in reports["demo.wrong"].failures] == [(False, b"WRONG again")]
    assert reports["demo.nope"].problems[:2] == ("id 'demo.nope' should be 'demo.untested'",
                                                 "category 'sideways' not one of ['channel', 'data-source', "
                                                 "'endpoint', 'execution', 'family', 'obfuscation', 'persistence',"
                                                 " 'privilege', 'property']")
    assert "no positive example" in reports["demo.nope"].problems
    assert reports["demo.gone"].problems == ("examples for a rule that does not exist",)


def test_examples_can_be_text_hex_utf16_and_carry_a_path(tmp_path: Path) -> None:
    (tmp_path / "x.yml").write_text(
        'x.r:\n  positive:\n    - "A\\0B"\n    - hex: "41 00"\n    - utf16: "AB"\n'
        '  negative:\n    - text: "C"\n      filepath: /system/bin/logsvc\n      filetype: elf\n')
    examples = load_examples(tmp_path)["x.r"]
    assert [(e.positive, e.data, e.filepath, e.filetype) for e in examples] == [
        (True, b"A\x00B", "", ""), (True, b"A\x00", "", ""), (True, b"A\x00B\x00", "", ""),
        (False, b"C", "/system/bin/logsvc", "elf")]
    (tmp_path / "x.yml").write_text("x.r:\n  positive:\n    - {text: a, hex: '61'}\n")
    with pytest.raises(ValueError, match="exactly one of"):
        load_examples(tmp_path)


# --- third-party folders -----------------------------------------------------------------------


def test_third_party_folder_compiles_beside_ours_and_skips_what_it_cannot(tmp_path: Path) -> None:
    lab = _lab(tmp_path)
    ruleset = compile_ruleset(Detection(extra_rules=(lab, tmp_path / "missing")))
    assert {(s.namespace, s.path.name, s.rules) for s in ruleset.sources if not s.ours} == {
        ("ext.lab-rules.by_name", "by_name.yar", 2),  # its own rule and the included one
        ("ext.lab-rules.by_hash", "by_hash.yara", 1),
        ("ext.lab-rules.common.strings", "strings.yar", 1),
    }
    reasons = {s.path.name: s.reason for s in ruleset.skipped}
    assert reasons == {
        "missing": "not found",
        "broken.yar": "does not compile: broken.yar(0): syntax error, unexpected end of file",  # libyara: line 0
        "needs_magic.yar": f"needs YARA module magic, which this libyara ({yara.YARA_VERSION}) lacks",
    }
    assert ruleset.hashes_needed == frozenset({"md5"})
    assert len(ruleset.metadata) == len(compile_ruleset(Detection()).metadata)  # ours all still there
    assert ruleset.third_party[("ext.lab-rules.by_name", "named_syncd")]["severity"] == "high"


def test_a_single_extra_file_gets_its_own_namespace(tmp_path: Path) -> None:
    single = tmp_path / "one.yar"
    single.write_text('rule lone { condition: false }\n')
    ruleset = compile_ruleset(Detection(extra_rules=(single,)))
    assert [(s.namespace, s.rules) for s in ruleset.sources if not s.ours] == [("ext.one", 1)]


def test_an_empty_configuration_still_gives_a_usable_ruleset(tmp_path: Path) -> None:
    ruleset = compile_ruleset(Detection(rules_dir=tmp_path / "none"))
    assert ruleset.sources == () and ruleset.rules.match(data=b"AT+CGSN") == []


# --- digest and caching ------------------------------------------------------------------------


def _copy_rules(tmp_path: Path) -> Path:
    copy = tmp_path / "rules"
    shutil.copytree(RULES_DIR, copy, ignore=shutil.ignore_patterns("behaviours"))
    return copy


def test_digest_is_stable_and_changes_with_rules_and_behaviours_not_examples(tmp_path: Path) -> None:
    rules = _copy_rules(tmp_path)
    first = compile_ruleset(Detection(rules_dir=rules)).digest
    assert compile_ruleset(Detection(rules_dir=rules)).digest == first
    assert re.fullmatch(r"[0-9a-f]{64}", first)

    (rules / "tests" / "telephony.yml").write_text((rules / "tests" / "telephony.yml").read_text() + "\n# note\n")
    assert compile_ruleset(Detection(rules_dir=rules)).digest == first

    telephony = rules / "telephony.yar"
    telephony.write_text(telephony.read_text().replace('"AT+CNUM"', '"AT+CNUM?"'))
    edited = compile_ruleset(Detection(rules_dir=rules)).digest
    assert edited != first

    (rules / "behaviours").mkdir()
    (rules / "behaviours" / "imei_over_http.yml").write_text("id: imei_over_http\n")
    assert compile_ruleset(Detection(rules_dir=rules)).digest not in (first, edited)


def test_a_third_party_folder_changes_the_digest(tmp_path: Path) -> None:
    assert compile_ruleset(Detection(extra_rules=(_lab(tmp_path),))).digest != compile_ruleset(Detection()).digest


def test_the_ruleset_is_compiled_once_per_settings() -> None:
    assert shared_ruleset(Detection()) is shared_ruleset(Detection())


# --- the command -------------------------------------------------------------------------------


def _fwtriage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "250", **env}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          env=environment, check=False, timeout=120)


def test_rules_test_command_passes_on_our_library(ours: Ruleset) -> None:
    result = _fwtriage("rules", "test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(ours.metadata)} of {len(ours.metadata)} rules pass their examples" in result.stdout
    assert re.search(r"telephony\.at_imei_query\s+3/3\s+3/3\s+pass", result.stdout)


def test_rules_test_command_fails_with_exit_1_when_an_example_fails(tmp_path: Path) -> None:
    rules = _copy_rules(tmp_path)
    examples = rules / "tests" / "telephony.yml"
    examples.write_text(examples.read_text().replace("    - \"AT+CIMI\\r\"\n", "    - \"AT+CIMX\\r\"\n"))
    result = _fwtriage("rules", "test", FWTRIAGE_RULES_DIR=str(rules))
    assert result.returncode == 1
    assert re.search(r"telephony\.at_imsi_query\s+0/1 ✗\s+2/2\s+FAIL missed 'AT\+CIMX\\\\r'", result.stdout)
    assert "1 rules fail: telephony.at_imsi_query" in result.stderr
    assert "Traceback" not in result.stderr


def test_rules_list_shows_every_rule_and_the_skipped_sources(tmp_path: Path, ours: Ruleset) -> None:
    result = _fwtriage("rules", "list", FWTRIAGE_RULES_PATH=str(_lab(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert re.search(r"telephony\.at_imei_query\s+data-source\s+medium\s+Asks the modem for the IMEI",
                     result.stdout)
    assert re.search(r"ext\.lab-rules\.by_name\.named_syncd\s+property\s+high\s+a file called syncd", result.stdout)
    assert f"{len(ours.metadata) + 4} rules from {len(ours.sources) + 3} files, 2 skipped" in result.stdout
    assert "skipped" in result.stderr and "needs YARA module magic" in result.stderr
    assert "broken.yar: does not compile" in result.stderr
