"""The layers hold at runtime, not only on paper: every services module and the domain model import
in a fresh interpreter where Flask cannot be imported, and the import contracts in setup.cfg fail
when a violation is planted (reproduce by hand: add `import flask` to any services module and run
`make lint`)."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import domain
import services
from marketplace.config import PROJECT_ROOT

BLOCKED = (
    "flask", "flask_login", "flask_babel", "flask_wtf", "flask_smorest", "flask_limiter", "marketplace",
)


def all_modules(package) -> list[str]:  # type: ignore[no-untyped-def]
    names = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
        names.append(info.name)
    return names


def run_without_flask(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a new interpreter in which importing Flask or the Flask app raises."""
    prelude = textwrap.dedent(
        f"""
        import sys
        from importlib.abc import MetaPathFinder

        class NoFlask(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"{{name}} may not be imported by services or the domain model")
                return None

        sys.meta_path.insert(0, NoFlask())
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


class TestServicesRunWithoutFlask:
    def test_every_services_and_domain_module_imports_where_flask_cannot(self):
        modules = all_modules(services) + all_modules(domain)
        assert "services.orders.checkout" in modules and "domain.clock" in modules
        code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
        code += f"assert not [m for m in sys.modules if m.split('.')[0] in {BLOCKED!r}]\nprint('ok')\n"
        result = run_without_flask(code)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "ok"

    def test_the_guard_itself_stops_a_flask_import(self):
        result = run_without_flask("import marketplace\n")
        assert result.returncode != 0 and "may not be imported" in result.stderr


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--config", "setup.cfg"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    for package in ("marketplace", "services", "domain"):
        shutil.copytree(
            PROJECT_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.mo")
        )
    shutil.copy(PROJECT_ROOT / "setup.cfg", root / "setup.cfg")
    return root


class TestImportContracts:
    """The contracts are run on a copy of the code, once clean and once with a planted violation."""

    def test_the_code_as_it_is_keeps_every_contract(self, project_copy: Path):
        result = lint_imports(project_copy)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 broken" in result.stdout

    @pytest.mark.parametrize(
        ("module", "planted", "contract"),
        [
            ("services/orders/pricing.py", "import flask", "never import Flask"),
            ("services/ledger.py", "import marketplace.auth", "never import Flask"),
            ("domain/orders.py", "import services.errors", "Flask app → services → domain model"),
            ("marketplace/cli.py", "import devtools.localstripe", "never imports devtools or tests"),
            ("services/ledger.py", "import tests.conftest", "never imports devtools or tests"),
        ],
    )
    def test_a_planted_violation_breaks_a_contract(self, project_copy: Path, module, planted, contract):
        path = project_copy / module
        original = path.read_text(encoding="utf-8")
        try:
            path.write_text(original + f"\n{planted}  # planted by the test\n", encoding="utf-8")
            result = lint_imports(project_copy)
        finally:
            path.write_text(original, encoding="utf-8")
        assert result.returncode != 0, result.stdout
        broken = [line for line in result.stdout.splitlines() if "BROKEN" in line]
        assert any(contract in line for line in broken), result.stdout
