"""Validate Atom documents against RFC 4287's schema and rules (../shared/corpus/schema)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree, isoschematron

SVRL = "{http://purl.oclc.org/dsdl/svrl}text"


@cache
def _validators(schema_dir: Path) -> tuple[etree.RelaxNG, isoschematron.Schematron]:
    rng = etree.RelaxNG(etree.parse(str(schema_dir / "atom.rng")))
    rules = isoschematron.Schematron(
        etree.parse(str(schema_dir / "atom-rules.sch")), store_report=True
    )
    return rng, rules


def atom_errors(document: bytes, schema_dir: Path) -> list[str]:
    """Every violation of the schema and the RFC's rules; [] means valid."""
    rng, rules = _validators(schema_dir)
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    tree = etree.fromstring(document, parser).getroottree()
    errors = [] if rng.validate(tree) else [f"line {e.line}: {e.message}" for e in rng.error_log]
    if not rules.validate(tree):
        errors += [t.text.strip() for t in rules.validation_report.iter(SVRL)]
    return errors
