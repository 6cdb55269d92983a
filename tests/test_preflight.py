"""benchmarks/preflight.py: a device stage stops in seconds when a module is missing."""

from benchmarks import preflight


def test_missing_names_only_the_modules_that_fail_to_import():
    bad = preflight.missing(("json", "no_such_module_a1b2", "os.path", "json.no_such_sub"))
    assert [b.split(" ")[0] for b in bad] == ["no_such_module_a1b2", "json.no_such_sub"]
    assert "ModuleNotFoundError" in bad[0]


def test_main_exits_1_with_one_line_naming_the_missing_module(monkeypatch, capsys):
    monkeypatch.setattr(preflight, "MODULES", ("json", "no_such_module_a1b2"))
    assert preflight.main() == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_module_a1b2" in err[0]


def test_main_passes_where_the_package_is_installed(monkeypatch, capsys):
    monkeypatch.setattr(preflight, "MODULES", ("json", "active_rlhf_jax.config"))
    assert preflight.main() == 0
    assert capsys.readouterr().out.startswith("preflight: ok")
