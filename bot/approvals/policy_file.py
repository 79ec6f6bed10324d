"""``HOOK_SECRET_POLICY_FILE``: tenants and rules from TOML, every problem reported at once.

The file is read with the standard library's ``tomllib`` and validated with pydantic models
(unknown keys refused). Each problem is one line naming its place in the file, as
``HOOK_SECRET_POLICY_FILE: rules[2].approvals: …``; rules are counted from 1, as their
default names ("rule 1", "rule 2", …) are. Client secrets are never in the file: a tenant
names the variable that holds its secret (``client_secret_env``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bot.approvals.quorum import Term
from bot.approvals.rules import Rule, Target, shadowing
from bot.targets.tenants import Tenant

VARIABLE = "HOOK_SECRET_POLICY_FILE"
TENANT_NAME = re.compile(r"^[a-z0-9-]{1,32}$")
# The tenant without a file: its targets' option values and messages carry no tenant name.
RESERVED_TENANT = "default"
PRINCIPAL = re.compile(r"^[UWS][A-Z0-9]{2,}$")
CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A variable's name as problem lines repeat it (one in upper case: a client secret never is).
SHOWN_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
TARGET = re.compile(r"^((action|hook):)?[^:\s]{1,255}$")
MAX_APPROVALS = 10


class PolicyError(Exception):
    """The policy file can't be used; ``problems`` has one line per problem, with its place."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _principals(ids: list[str]) -> list[str]:
    for item in ids:
        if not PRINCIPAL.match(item):
            raise ValueError(f'"{item}" is not a Slack user or group id (U…, W… or S…)')
    return ids


class TenantModel(_Strict):
    """``[tenants.NAME]``."""

    domain: str
    client_id: Annotated[str, Field(min_length=1)]
    client_secret_env: str
    base_url: str | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not DOMAIN.match(value):
            raise ValueError("must be a domain name such as acme.eu.auth0.com")
        return value

    @field_validator("client_secret_env")
    @classmethod
    def _env(cls, value: str) -> str:
        if not ENV_NAME.match(value):
            raise ValueError("must name an environment variable (letters, digits and _)")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value


class TermModel(_Strict):
    """One quorum term: ``{ from = [...], count = K }``."""

    from_: Annotated[list[str], Field(alias="from", min_length=1)]
    count: Annotated[int, Field(ge=1, le=MAX_APPROVALS)] = 1

    @field_validator("from_")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        return _principals(value)


class RuleModel(_Strict):
    """One ``[[rules]]`` entry."""

    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    tenant: str
    targets: Annotated[list[str], Field(min_length=1)] = ["*"]
    requesters: Annotated[list[str], Field(min_length=1)]
    approvers: list[str] = []
    channel: str | None = None
    approvals: int | list[TermModel] = 1
    ttl: Annotated[int, Field(ge=60, le=30 * 86400)] | None = None

    @field_validator("requesters", "approvers")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        return _principals(value)

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        for item in value:
            if not TARGET.match(item):
                raise ValueError(
                    f'"{item}" is not a target glob ("NAME", "action:NAME", "hook:NAME")'
                )
        return value

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not CHANNEL.match(value):
            raise ValueError(f'"{value}" is not a Slack channel id (C… or G…)')
        return value

    @field_validator("approvals", mode="before")
    @classmethod
    def _shape(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("an empty quorum: list terms, or write 0 for self-service")
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("must be a number of approvals or a list of quorum terms")
        if not 0 <= value <= MAX_APPROVALS:
            raise ValueError(f"must be 0 to {MAX_APPROVALS}")
        return value


class FileModel(_Strict):
    """The whole file."""

    tenants: Annotated[dict[str, TenantModel], Field(min_length=1)]
    rules: Annotated[list[RuleModel], Field(min_length=1)]


class Policy(BaseModel):
    """The tenants and rules in file order, ready to decide."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    tenants: tuple[Tenant, ...]
    rules: tuple[Rule, ...]

    def tenant(self, name: str) -> Tenant | None:
        """The tenant called ``name``, if any."""
        return next((t for t in self.tenants if t.name == name), None)

    def rule_for(self, target: Target) -> Rule | None:
        """The first rule in file order that matches ``target``: it decides."""
        return next((r for r in self.rules if r.matches(target)), None)


def load(path: Path, env: Mapping[str, str]) -> Policy:
    """Read and check the file; ``PolicyError`` lists every problem found."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PolicyError([f"{VARIABLE}: cannot read {path}: {error.strerror}"]) from None
    except UnicodeDecodeError:
        raise PolicyError([f"{VARIABLE}: {path} is not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError([f"{VARIABLE}: TOML syntax error: {error}"]) from None
    return parse(raw, env)


def parse(raw: dict[str, Any], env: Mapping[str, str]) -> Policy:
    """Check a parsed file; ``PolicyError`` lists every problem found, each with its place."""
    try:
        model = FileModel.model_validate(raw)
    except ValidationError as error:
        errors = [e for e in error.errors() if not _other_branch(e["loc"], e["input"])]
        schema = [_line(_place(e["loc"]), _message(e["msg"])) for e in errors]
        # The same round also says what the parts that are well formed on their own mean.
        raise PolicyError(schema + _meaning_problems(_Parts.of_raw(raw), env)) from None
    problems = _meaning_problems(_Parts.of_model(model), env)
    if problems:
        raise PolicyError(problems)
    return _build(model, env)


@dataclass(frozen=True)
class _Parts:
    """What the meaning checks look at: every tenant's name and secret variable as written,
    and the rules that are well formed, each with its number in the file."""

    tenants: dict[str, str | None]  # name → client_secret_env, if it is a variable's name
    rules: list[tuple[int, RuleModel]]

    @classmethod
    def of_model(cls, model: FileModel) -> _Parts:
        tenants: dict[str, str | None] = {
            name: t.client_secret_env for name, t in model.tenants.items()
        }
        return cls(tenants, list(enumerate(model.rules, start=1)))

    @classmethod
    def of_raw(cls, raw: dict[str, Any]) -> _Parts:
        """A file the schema refused: the tenants as named, the rules that validate alone."""
        tenants_raw = raw.get("tenants")
        tenants: dict[str, str | None] = {}
        for name, tenant in (tenants_raw if isinstance(tenants_raw, dict) else {}).items():
            env = tenant.get("client_secret_env") if isinstance(tenant, dict) else None
            tenants[name] = env if isinstance(env, str) and ENV_NAME.match(env) else None
        rules_raw = raw.get("rules")
        rules: list[tuple[int, RuleModel]] = []
        for number, rule in enumerate(rules_raw if isinstance(rules_raw, list) else [], start=1):
            try:
                rules.append((number, RuleModel.model_validate(rule)))
            except ValidationError:
                continue  # its problems are already among the schema's
        return cls(tenants, rules)


def _place(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as the file names it: ``rules[2].approvals``, counting from 1."""
    place = ""
    items = list(loc)
    for index, part in enumerate(items):
        if isinstance(part, int):
            place += f"[{part + 1}]"
        elif index > 0 and items[index - 1] == "approvals" and part.startswith("list["):
            continue  # pydantic names the union branch it tried; the file has no such key
        elif part in ("int", "constrained-int") or part.startswith("list["):
            continue
        else:
            place += ("." if place else "") + ("from" if part == "from_" else str(part))
    return place


def _other_branch(loc: tuple[int | str, ...], value: Any) -> bool:
    """An error from the number branch of ``approvals`` when the file gave a list of terms."""
    return bool(loc) and loc[-1] in ("int", "constrained-int") and isinstance(value, list)


def _message(message: str) -> str:
    return message.removeprefix("Value error, ")


def _line(place: str, message: str) -> str:
    return f"{VARIABLE}: {place}: {message}" if place else f"{VARIABLE}: {message}"


def _unset(secret_env: str) -> str:
    """Why a tenant has no client secret: its variable is unset or empty. A name in upper case
    (``AUTH0_PROD_CLIENT_SECRET``) is repeated; any other is not, since it may be the secret
    itself pasted where its variable's name goes, and this line is printed before any log
    redactor could know it."""
    if SHOWN_ENV_NAME.match(secret_env):
        return f"the variable {secret_env} is unset or empty"
    return (
        "the variable it names is unset or empty (a name not in upper case is not repeated "
        "here: it could be the client secret itself)"
    )


def _meaning_problems(parts: _Parts, env: Mapping[str, str]) -> list[str]:
    """What the schema can't see: names, references, channels, approvers, shadowed rules."""
    problems: list[str] = []
    for name, secret_env in parts.tenants.items():
        if not TENANT_NAME.match(name):
            problems.append(_line(f"tenants.{name}", "a tenant's name is 1 to 32 of a-z, 0-9, -"))
        elif name == RESERVED_TENANT:  # option values and messages would not name it
            problems.append(
                _line(
                    f"tenants.{name}",
                    '"default" is the name of the AUTH0_* variables\' tenant (no file): '
                    "give this tenant another name",
                )
            )
        if secret_env is not None and not env.get(secret_env, "").strip():
            problems.append(
                _line(
                    f"tenants.{name}.client_secret_env",
                    _unset(secret_env),
                )
            )
    for number, rule in parts.rules:
        found = _rule_problems(set(parts.tenants), rule)
        problems += [_line(f"rules[{number}]{p}", m) for p, m in found]
    numbers = [number for number, _ in parts.rules]
    rules = [_rule(number, rule) for number, rule in parts.rules]
    for later, earlier in shadowing(rules):
        problems.append(
            _line(
                f"rules[{numbers[later]}]",
                f'never decides anything: rule "{rules[earlier].name}" (rules[{numbers[earlier]}]) '
                "matches every target it matches",
            )
        )
    return problems


def _rule_problems(tenants: set[str], rule: RuleModel) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if rule.tenant != "*" and rule.tenant not in tenants:
        found.append((".tenant", f'names no tenant in the file: "{rule.tenant}"'))
    needs = rule.approvals if isinstance(rule.approvals, int) else 1
    if needs > 0 and rule.channel is None:
        found.append((".channel", "a rule that needs approvals needs the channel to ask them in"))
    if isinstance(rule.approvals, int) and rule.approvals > 0:
        groups = [a for a in rule.approvers if a.startswith("S")]
        if not groups and len(set(rule.approvers)) < rule.approvals:
            found.append(
                (
                    ".approvers",
                    f"approvals = {rule.approvals} needs {rule.approvals} distinct approvers, "
                    f"and the list has {len(set(rule.approvers))} users and no group",
                )
            )
    if isinstance(rule.approvals, list):
        for index, term in enumerate(rule.approvals, start=1):
            groups = [a for a in term.from_ if a.startswith("S")]
            if not groups and len(set(term.from_)) < term.count:
                found.append(
                    (f".approvals[{index}]", f"count = {term.count} is more than the people listed")
                )
        if rule.approvers:
            found.append((".approvers", "not used with a quorum: list people in each term"))
    return found


def _rules(model: FileModel) -> list[Rule]:
    return [_rule(number, rule) for number, rule in enumerate(model.rules, start=1)]


def _rule(number: int, rule: RuleModel) -> Rule:
    return Rule(
        name=rule.name or f"rule {number}",
        tenant=rule.tenant,
        targets=tuple(rule.targets),
        requesters=tuple(rule.requesters),
        approvers=tuple(rule.approvers),
        channel=rule.channel,
        terms=_terms(rule),
        ttl=rule.ttl,
    )


def _terms(rule: RuleModel) -> tuple[Term, ...]:
    if isinstance(rule.approvals, int):
        return (Term(tuple(rule.approvers), rule.approvals),) if rule.approvals else ()
    return tuple(Term(tuple(term.from_), term.count) for term in rule.approvals)


def _build(model: FileModel, env: Mapping[str, str]) -> Policy:
    tenants = tuple(
        Tenant(
            name=name,
            domain=tenant.domain,
            client_id=tenant.client_id,
            client_secret=SecretStr(env[tenant.client_secret_env].strip()),
            base_url=tenant.base_url,
        )
        for name, tenant in model.tenants.items()
    )
    return Policy(tenants=tenants, rules=tuple(_rules(model)))
