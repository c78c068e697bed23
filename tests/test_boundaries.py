"""The boundaries between contexts stay where docs/architecture.md draws them.

Two checks: the import contracts in pyproject.toml (`[tool.importlinter]`: pure rules, own
tables, scheduling upstream of booking, no web layer in domain code, kit below everything),
run with `lint-imports` on this checkout's sources; and a walk over every module's syntax
for another context's private names, which import-linter cannot see."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "src" / "yuyue"


def test_import_contracts_hold() -> None:
    # A subprocess, so that the linter sees this checkout's `yuyue` and nothing the test
    # session imported changes what it finds.
    paths = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, "
            "no_logo=True))",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout, run.stdout


# --- private names ---------------------------------------------------------------------------


def context_of(dotted: str) -> str:
    """`yuyue.booking.waitlist.service` belongs to `booking`; `yuyue` itself to none."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "yuyue" else ""


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _resolve(expr: ast.expr, bound: dict[str, str]) -> str | None:
    """The dotted yuyue name an expression like `booking_service` or `yuyue.booking.service`
    stands for, when an import bound it."""
    if isinstance(expr, ast.Name):
        return bound.get(expr.id)
    if isinstance(expr, ast.Attribute):
        base = _resolve(expr.value, bound)
        return f"{base}.{expr.attr}" if base else None
    return None


def private_uses(module: str, source: str) -> list[str]:
    """Every place `module` names a private (leading underscore) name of another context:
    `from yuyue.x.y import _name`, or `_name` read from a module of another context."""
    own = context_of(module)
    tree = ast.parse(source)
    bound: dict[str, str] = {}
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module != "yuyue" and not node.module.startswith("yuyue."):
                continue
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                bound[alias.asname or alias.name] = target
                if is_private(alias.name) and context_of(target) not in ("", own):
                    found.append(f"{module}:{node.lineno} imports {target}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("yuyue."):
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        bound["yuyue"] = "yuyue"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            base = _resolve(node.value, bound)
            if base is not None and context_of(base) not in ("", own):
                found.append(f"{module}:{node.lineno} uses {base}.{node.attr}")
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCES.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_context_uses_another_contexts_private_names() -> None:
    found = [
        use
        for path in sorted(SOURCES.rglob("*.py"))
        for use in private_uses(module_name(path), path.read_text(encoding="utf-8"))
    ]
    assert found == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        pytest.param(
            "yuyue.visits.service",
            "from yuyue.booking.service import _cancel_locked, book\n",
            ["yuyue.visits.service:1 imports yuyue.booking.service._cancel_locked"],
            id="from-import",
        ),
        pytest.param(
            "yuyue.visits.service",
            "from yuyue.booking import service as booking\n\nbooking._lock(1)\n",
            ["yuyue.visits.service:3 uses yuyue.booking.service._lock"],
            id="attribute-of-an-alias",
        ),
        pytest.param(
            "yuyue.portal.pages",
            "import yuyue.booking.service\n\nyuyue.booking.service._next_number(1)\n",
            ["yuyue.portal.pages:3 uses yuyue.booking.service._next_number"],
            id="attribute-of-a-dotted-import",
        ),
        pytest.param(
            "yuyue.booking.waitlist.service",
            "from yuyue.booking import service\n\nservice._release_place(1)\n",
            [],
            id="inside-the-same-context",
        ),
        pytest.param(
            "yuyue.web.app",
            "from yuyue import __version__\nfrom yuyue.portal import texts as _texts\n",
            [],
            id="dunders-and-private-aliases",
        ),
        pytest.param(
            "yuyue.visits.service",
            "def f(appointment):\n    return appointment._sa_instance_state\n",
            [],
            id="attributes-of-values",
        ),
    ],
)
def test_the_private_name_check_sees_both_ways_in(
    module: str, source: str, expected: list[str]
) -> None:
    assert private_uses(module, source) == expected


# --- one page layer -----------------------------------------------------------------------------

# The shared page layer: the one place that defines what every page does the same way.
PAGE_LAYER = "yuyue.web.pagekit"
# Pretend payment providers' own cashier pages stand for the providers, not for the house.
NOT_HOUSE_PAGES = ("yuyue.payments.simulators",)
# What the page layer defines once: a page module that defines one of these again (a
# function, a property or a class of that name) keeps a second copy of it.
PAGE_LAYER_NAMES = frozenset(
    {
        "CsrfFailed",
        "csrf",
        "csrf_accepted",
        "check_csrf",
        "form_of",
        "render",
        "fragment",
        "render_fragment",
        "page_error",
        "error_page",
        "is_page",
        "is_htmx",
        "_is_htmx",
        "redirect",
        "safe_next",
        "page_locale",
        "portal_hospital",
        "_uuid",
        "_date_or_none",
        "_parse_day",
        "with_query",
        "_with",
        "filled",
        "_filled",
        "FormRefused",
        "FormFields",
        "_labels",
        "_invalid",
    }
)
# Calls that build what the page layer builds: a template environment, a redirect.
PAGE_LAYER_CALLS = frozenset({"Environment", "RedirectResponse"})


# A module is a page module when it answers with HTML or templates, or uses the page layer.
PAGE_IMPORTS = ("jinja2", "yuyue.web.pagekit", "yuyue.portal.web", "yuyue.frontdesk.web")


def is_page_module(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(PAGE_IMPORTS):
                return True
            if node.module == "fastapi.responses" and any(
                alias.name == "HTMLResponse" for alias in node.names
            ):
                return True
        if isinstance(node, ast.Import) and any(
            alias.name.startswith(PAGE_IMPORTS) for alias in node.names
        ):
            return True
    return False


def page_layer_copies(module: str, source: str) -> list[str]:
    """Every place page module `module` defines again what the shared page layer defines,
    or builds its own template environment or redirect."""
    tree = ast.parse(source)
    if module == PAGE_LAYER or module.startswith(NOT_HOUSE_PAGES) or not is_page_module(tree):
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            # A visitor says what its token is derived from (`csrf_subject`), nothing more.
            if node.name in PAGE_LAYER_NAMES:
                found.append(f"{module}:{node.lineno} defines {node.name}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in PAGE_LAYER_CALLS:
                found.append(f"{module}:{node.lineno} builds {name}")
    return found


def test_pages_keep_no_copy_of_the_page_layer() -> None:
    found = [
        copy
        for path in sorted(SOURCES.rglob("*.py"))
        for copy in page_layer_copies(module_name(path), path.read_text(encoding="utf-8"))
    ]
    assert found == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        pytest.param(
            "yuyue.frontdesk.timetable",
            "from yuyue.frontdesk.web import render\n\ndef _uuid(text):\n    return None\n",
            ["yuyue.frontdesk.timetable:3 defines _uuid"],
            id="a-helper-again",
        ),
        pytest.param(
            "yuyue.portal.web",
            "from yuyue.web.pagekit import PageVisitor\n\n"
            "class Visitor(PageVisitor):\n    @property\n    def csrf(self):\n        return ''\n",
            ["yuyue.portal.web:5 defines csrf"],
            id="a-csrf-token-again",
        ),
        pytest.param(
            "yuyue.reports.pages",
            "from jinja2 import Environment\n\ntemplates = Environment()\n",
            ["yuyue.reports.pages:3 builds Environment"],
            id="a-template-environment-again",
        ),
        pytest.param(
            "yuyue.reports.pages",
            "from fastapi.responses import HTMLResponse, RedirectResponse\n\n"
            "async def home(request):\n    return RedirectResponse('/')\n",
            ["yuyue.reports.pages:4 builds RedirectResponse"],
            id="a-redirect-again",
        ),
        pytest.param(
            "yuyue.frontdesk.web",
            "from yuyue.web.pagekit import PageTemplates\n\n"
            "templates = PageTemplates('yuyue.frontdesk')\nrender = templates.render\n",
            [],
            id="using-the-layer",
        ),
        pytest.param(
            "yuyue.web.pagekit",
            "def render():\n    pass\n",
            [],
            id="the-layer-itself",
        ),
        pytest.param(
            "yuyue.booking.api",
            "from fastapi.responses import JSONResponse\n\ndef render(x):\n    return x\n",
            [],
            id="not-a-page-module",
        ),
    ],
)
def test_the_page_layer_check_finds_copies(module: str, source: str, expected: list[str]) -> None:
    assert page_layer_copies(module, source) == expected
