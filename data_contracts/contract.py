"""The machinery behind every source contract: fields and rules declared once, used twice.

A source contract is a table of fields (type, required, allowed values, validator) plus a few
cross-field rules. From that single declaration we derive
  1. the row-level split: every rule becomes a polars expression that is True where a record breaks
     it, so one pass over the batch yields valid rows and quarantined rows with *every* broken rule;
  2. the pandera (polars) schema that the valid rows must then satisfy, typed.
Keeping both in one place means the quarantine and the contract can never drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandera.errors
import pandera.polars as pa
import polars as pl

from data_contracts.identifiers import map_distinct

#: Parsers from the delivered text to the typed column. A value that does not parse becomes null,
#: and the field's `*_unparsable` rule catches it.
PARSERS: dict[str, tuple[pl.DataType, Callable[[pl.Expr], pl.Expr]]] = {
    "str": (pl.String(), lambda c: c),
    "date": (pl.Date(), lambda c: c.str.to_date("%Y-%m-%d", strict=False)),
    "timestamp": (
        pl.Datetime("us", "UTC"),
        lambda c: c.str.to_datetime("%+", time_zone="UTC", time_unit="us", strict=False),
    ),
    "decimal_comma": (
        pl.Float64(),
        lambda c: (
            pl.when(c.str.contains(r"^-?\d+(,\d+)?$"))
            .then(c.str.replace(",", ".", literal=True))
            .cast(pl.Float64, strict=False)
        ),
    ),
    # a sign is read, so that a negative count reaches the field's `*_out_of_range` rule
    "int": (pl.Int64(), lambda c: pl.when(c.str.contains(r"^-?\d+$")).then(c).cast(pl.Int64, strict=False)),
    "flag": (pl.Boolean(), lambda c: pl.when(c == "1").then(True).when(c == "0").then(False)),
}


@dataclass(frozen=True)
class Field:
    """One delivered column: how to type it and what it must satisfy."""

    name: str
    kind: str = "str"
    required: bool = True
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    #: identifier validator returning None or a rule code (never the value)
    validator: Callable[[str], str | None] | None = None
    min_value: float | None = None
    #: the one spelling an identifier is stored and joined in (`identifiers.*_canonical`): a value
    #: the validator accepts in several spellings (`010190-123a`) must be one string in every table,
    #: join and pseudonym. Applied to the typed value; the quarantine keeps the delivered text.
    canonical: Callable[[str], str] | None = None


@dataclass(frozen=True)
class Rule:
    """A cross-field or reference rule. `broken` is True where a record breaks it."""

    code: str
    detail: str
    broken: Callable[[Mapping[str, object]], pl.Expr]
    #: True when the rule only looks at typed columns, so pandera can assert it on valid rows too
    typed: bool = True


@dataclass(frozen=True)
class SourceContract:
    """Everything the pipeline knows about one landing-zone source."""

    source: str
    file_prefix: str
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...] = ()
    #: how deliveries combine: snapshot (latest replaces), upsert, append, state (carried forward)
    semantics: str = "append"
    description: str = ""
    extra_columns: tuple[str, ...] = field(default=())
    #: a key that is unique across all deliveries (landing-zone.md): ingestion hands each file the
    #: keys of the earlier files' valid rows as `context["delivered_before"]`, for the duplicate rule
    unique_across_deliveries: str | None = None

    @property
    def header(self) -> list[str]:
        return [f.name for f in self.fields]

    def typed_schema(self) -> dict[str, pl.DataType]:
        return {f.name: PARSERS[f.kind][0] for f in self.fields}

    # ---- the split -------------------------------------------------------------------------
    def field_rules(self) -> list[tuple[str, str, pl.Expr]]:
        """(code, detail, broken-expression) for every field-level rule, on raw text columns."""
        return [rule for f in self.fields for rule in _field_rules(f)]

    def validator_rules(self) -> list[tuple[str, pl.Expr]]:
        """Identifier validators: one expression per field that yields the broken rule code or null."""
        return [(f.name, _validator_rule(f)) for f in self.fields if f.validator is not None]

    def _broken_on_typed(self) -> list[pl.Expr]:
        """The field rules and validators as True-where-broken expressions, for `split`: the same
        rules as `field_rules`, except that a rule on the parsed value reads `_typed_<name>`."""
        out = []
        for f in self.fields:
            raw = pl.col(f.name)
            present = raw.is_not_null() & (raw != "")
            typed = pl.col(f"_typed_{f.name}")
            for code, _, expr in _field_rules(f):
                if code == f"{f.name}_unparsable":
                    expr = present & typed.is_null()
                elif code == f"{f.name}_out_of_range":
                    expr = present & (typed < f.min_value).fill_null(False)
                out.append(expr.fill_null(False))
        return out + [expr.is_not_null() for _, expr in self.validator_rules()]

    def parse(self, raw: pl.LazyFrame) -> pl.LazyFrame:
        """Typed columns `<name>` replace the text; the text stays as `_raw_<name>` for the rules."""
        return raw.with_columns(
            *[pl.col(f.name).alias(f"_raw_{f.name}") for f in self.fields],
        ).with_columns(*[_typed(f).alias(f.name) for f in self.fields])

    def split(
        self, raw: pl.DataFrame, context: Mapping[str, object] | None = None
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Split a batch of text records into (valid typed rows, quarantined rows with every rule).

        `raw` holds the delivered columns as text plus `_line` (and optionally other `_` columns,
        which are carried along). The quarantine frame has `line`, `rule` (sorted, comma-separated
        codes), `detail` and `raw`. Rule lists are only built for the rows that break something,
        so the common all-valid case costs one boolean pass.
        """
        context = context or {}
        checks: list[tuple[str | None, pl.Expr]] = [(code, expr) for code, _, expr in self.field_rules()]
        checks += [(None, expr) for _, expr in self.validator_rules()]  # yields the code itself
        details = {code: detail for code, detail, _ in self.field_rules()} | {r.code: r.detail for r in self.rules}
        as_code = [_as_code(code, expr) for code, expr in checks]
        # typed rules may look across rows (duplicates), so they are evaluated on the whole batch
        typed_flags = [r.broken(context).fill_null(False).alias(f"_rule_{r.code}") for r in self.rules]
        # Each column is parsed once; the field rules that need the parsed value (unparsable, out of
        # range) read it from `_typed_<name>` instead of parsing the text again. On a present value
        # (not null, not empty) that is exactly the value the rule would parse itself.
        frame = (
            raw.lazy()
            .with_columns(_typed(f).alias(f"_typed_{f.name}") for f in self.fields)
            .with_columns(pl.any_horizontal(self._broken_on_typed()).fill_null(False).alias("_raw_broken"))
            .with_columns(*[pl.col(f.name).alias(f"_raw_{f.name}") for f in self.fields])
            .with_columns(*[pl.col(f"_typed_{f.name}").alias(f.name) for f in self.fields])
            .drop([f"_typed_{f.name}" for f in self.fields])
            .with_columns(typed_flags)
            .with_columns(
                pl.any_horizontal([pl.col("_raw_broken")] + [pl.col(f"_rule_{r.code}") for r in self.rules]).alias(
                    "_broken"
                )
            )
            .collect()
        )
        keep = [f.name for f in self.fields] + [c for c in raw.columns if c.startswith("_")]
        bad = frame.filter(pl.col("_broken"))
        valid = (
            frame.select(keep)
            if bad.is_empty()
            else frame.select(*keep, "_broken").filter(~pl.col("_broken")).drop("_broken")
        )
        if bad.is_empty():
            empty = {"line": pl.Int64, "rule": pl.String, "detail": pl.String, "raw": pl.String}
            return valid, pl.DataFrame(schema=empty)
        # rules on raw text are evaluated on the raw columns, typed rules on the typed ones
        raw_bad = bad.select([pl.col(f"_raw_{f.name}").alias(f.name) for f in self.fields] + ["_line"])
        raw_codes = raw_bad.select(pl.concat_list(as_code).list.drop_nulls().alias("r"))["r"]
        typed_codes = (
            bad.select(
                pl.concat_list([pl.when(pl.col(f"_rule_{r.code}")).then(pl.lit(r.code)) for r in self.rules])
                .list.drop_nulls()
                .alias("r")
            )["r"]
            if self.rules
            else pl.Series("r", [[] for _ in range(bad.height)], dtype=pl.List(pl.String))
        )
        quarantined = raw_bad.with_columns(
            pl.Series("_rules", raw_codes).list.concat(typed_codes).list.unique().list.sort()
        ).select(
            pl.col("_line").cast(pl.Int64).alias("line"),
            pl.col("_rules").list.join(",").alias("rule"),
            pl.col("_rules")
            .list.eval(
                pl.element().replace_strict(details, default=pl.lit("identifier fails its check digit or format"))
            )
            .list.join("; ")
            .alias("detail"),
            pl.concat_str([pl.col(f.name).fill_null("") for f in self.fields], separator=";").alias("raw"),
        )
        return valid, quarantined

    # ---- the pandera contract for valid rows -----------------------------------------------
    def pandera_schema(self, context: Mapping[str, object] | None = None) -> pa.DataFrameSchema:
        context = context or {}
        columns = {}
        for f in self.fields:
            checks = []
            if f.allowed is not None:
                checks.append(pa.Check.isin(list(f.allowed)))
            if f.pattern is not None and f.kind == "str":  # typed columns were checked as text
                checks.append(pa.Check.str_matches(f.pattern))
            if f.min_value is not None:
                checks.append(pa.Check.ge(f.min_value))
            columns[f.name] = pa.Column(PARSERS[f.kind][0], checks=checks, nullable=not f.required)
        frame_checks = [
            pa.Check(
                lambda data, r=r: data.lazyframe.select((~r.broken(context)).fill_null(True)),
                name=r.code,
                error=r.detail,
            )
            for r in self.rules
            if r.typed
        ]
        return pa.DataFrameSchema(columns, checks=frame_checks, name=self.source, strict=False, coerce=False)


def _typed(f: Field) -> pl.Expr:
    """The typed value of a delivered column (null when empty), in its canonical spelling."""
    typed = PARSERS[f.kind][1](pl.when(pl.col(f.name) != "").then(pl.col(f.name)))
    return typed if f.canonical is None else map_distinct(typed, f.canonical, pl.String())


def _field_rules(f: Field) -> list[tuple[str, str, pl.Expr]]:
    """(code, detail, broken-expression) for the field-level rules of one field, on its raw text."""
    out: list[tuple[str, str, pl.Expr]] = []
    raw = pl.col(f.name)
    present = raw.is_not_null() & (raw != "")
    if f.required:
        out.append((f"{f.name}_missing", f"{f.name} is required", ~present.fill_null(False)))
    if f.kind != "str":
        parsed = PARSERS[f.kind][1](raw)
        out.append(
            (f"{f.name}_unparsable", f"{f.name} is not a valid {f.kind.replace('_', ' ')}", present & parsed.is_null())
        )
    if f.allowed is not None:
        out.append(
            (
                f"{f.name}_unknown_code",
                f"{f.name} must be one of {', '.join(f.allowed)}",
                present & ~raw.is_in(list(f.allowed)),
            )
        )
    if f.pattern is not None:
        out.append((f"{f.name}_format", f"{f.name} must match {f.pattern}", present & ~raw.str.contains(f.pattern)))
    if f.min_value is not None:
        parsed = PARSERS[f.kind][1](raw)
        out.append(
            (
                f"{f.name}_out_of_range",
                f"{f.name} must be >= {f.min_value:g}",
                present & (parsed < f.min_value).fill_null(False),
            )
        )
    return out


def _validator_rule(f: Field) -> pl.Expr:
    raw = pl.col(f.name)
    present = raw.is_not_null() & (raw != "")
    return pl.when(present).then(map_distinct(raw, f.validator, pl.String()))  # type: ignore[arg-type]


def _as_code(code: str | None, expr: pl.Expr) -> pl.Expr:
    """The rule code where `expr` is True (field rules), or `expr` itself when it yields the code."""
    return pl.when(expr.fill_null(False)).then(pl.lit(code)) if code else expr


class ContractViolation(Exception):
    """A frame breaks its pandera contract. Names checks and counts, never the failing values."""


def check_frame(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame:
    """Validate with pandera; re-raise without the failure cases, which may hold personal data."""
    try:
        return schema.validate(frame, lazy=True)
    except (pandera.errors.SchemaErrors, pandera.errors.SchemaError) as exc:
        cases = getattr(exc, "failure_cases", None)
        if isinstance(cases, pl.DataFrame) and {"check", "column"} <= set(cases.columns):
            summary = "; ".join(
                f"{column or 'table'}: {check} ({n} rows)"
                for column, check, n in cases.group_by("column", "check").len().sort("column", "check").rows()
            )
        else:
            summary = type(exc).__name__
        raise ContractViolation(f"{schema.name}: frame breaks its contract: {summary}") from None
