"""The `renewal features` command end to end: validate, compute, write atomically."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import days

from renewal.cli import main

ACCOUNTS = [{"account_id": "a", "signed_at": "2024-01-01", "seats": 10},
            {"account_id": "later", "signed_at": "2024-03-01", "seats": 10}]


def _run(args: list[str], capsys) -> tuple[int, str]:
    """Run the console script in-process; return its exit code and everything it printed."""
    with pytest.raises(SystemExit) as exit_info:
        main(["features", *args])
    captured = capsys.readouterr()
    return exit_info.value.code or 0, captured.out + captured.err


def _usage() -> list[dict]:
    return [{"account_id": "a", "date": day, "user_id": "u", "logins": 1, "key_actions": 2}
            for day in days("2024-01-01", 40)]


def test_command_writes_vectors_and_daily_table(make_dir, tmp_path, capsys):
    data_dir = make_dir(ACCOUNTS, _usage())
    out, daily_out = tmp_path / "out" / "vectors.parquet", tmp_path / "daily.parquet"
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", str(out),
                         "--daily-out", str(daily_out)], capsys)
    assert code == 0, output
    vectors = pd.read_parquet(out)
    assert vectors.account_id.tolist() == ["a"]
    assert vectors.active_days_30d.tolist() == [30]
    daily = pd.read_parquet(daily_out)
    assert len(daily) == 31 and daily.tier.eq("low").all()
    assert list(out.parent.iterdir()) == [out]  # no temporary files left behind


def test_unknown_config_key_is_a_readable_error(make_dir, tmp_path, capsys):
    data_dir = make_dir(ACCOUNTS, _usage())
    config = tmp_path / "features.toml"
    config.write_text("active_shares = 0.5\n")
    out = tmp_path / "vectors.parquet"
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", str(out),
                         "--config", str(config)], capsys)
    assert code == 2
    assert "active_shares" in output
    assert not out.exists()


def test_broken_data_directory_exits_2_without_output(make_dir, tmp_path, capsys):
    usage = _usage()
    usage[0]["key_actions"] = -5
    data_dir = make_dir(ACCOUNTS, usage)
    out = tmp_path / "vectors.parquet"
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", str(out)],
                        capsys)
    assert code == 2
    assert "usage.key_actions" in output
    assert not out.exists()


# -- --spine: one vector per point in time -------------------------------------------------

def _spine_csv(tmp_path, rows: list[str], header: str = "account_id,as_of,label"):
    path = tmp_path / "spine.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_spine_gives_one_vector_per_row_each_from_its_own_past(make_dir, tmp_path, capsys):
    data_dir = make_dir(ACCOUNTS, _usage())  # "a": a low day every day, 2024-01-01..02-09
    spine = _spine_csv(tmp_path, ["a,2024-01-31,1", "later,2024-03-05,0", " a ,2024-01-10,1",
                                  "a,2024-01-31T23:30:00-05:00,0"])
    out, daily_out = tmp_path / "vectors.parquet", tmp_path / "daily.parquet"
    code, output = _run(["--data", str(data_dir), "--spine", str(spine), "--out", str(out),
                         "--daily-out", str(daily_out)], capsys)
    assert code == 0, output
    assert "4 vectors (2 accounts, 3 as-of dates) x " in output
    spine_width = output.split(" as-of dates) x ")[1].split()[0]
    vectors = pd.read_parquet(out)
    # Every row kept, the repeated one too, in the file's order, its label beside the keys; a
    # padded id is the id, a date-time counts by the date written.
    assert list(vectors.columns[:3]) == ["account_id", "as_of", "label"]
    assert list(zip(vectors.account_id, vectors.as_of.dt.strftime("%Y-%m-%d"), vectors.label,
                    strict=True)) == [("a", "2024-01-31", 1), ("later", "2024-03-05", 0),
                                      ("a", "2024-01-10", 1), ("a", "2024-01-31", 0)]
    # 2024-01-10 sees days 01-01..01-10 only, not the 30 days after it.
    assert vectors.active_days_30d.tolist() == [30, 0, 10, 30]
    assert vectors.tenure_days.tolist() == [30, 4, 9, 30]
    # The daily table runs to the latest as_of: "a" 01-01..03-05 (65 days), "later" 5 days.
    daily = pd.read_parquet(daily_out)
    assert daily.groupby("account_id").size().to_dict() == {"a": 65, "later": 5}

    # A spine row's vector is the vector of a run as of its date.
    single = tmp_path / "single.parquet"
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", str(single)],
                        capsys)
    assert code == 0, output
    # The label is the spine's, not a feature: both runs count the same features.
    assert f"wrote 1 accounts x {spine_width} features" in output
    expected = pd.read_parquet(single).query("account_id == 'a'").reset_index(drop=True)
    pd.testing.assert_frame_equal(vectors.iloc[[0]].drop(columns="label").reset_index(drop=True),
                                  expected)


def test_spine_header_names_are_trimmed(make_dir, tmp_path, capsys):
    data_dir = make_dir(ACCOUNTS, _usage())
    spine = _spine_csv(tmp_path, ["a,2024-01-20"], " account_id , as_of")
    out = tmp_path / "vectors.parquet"
    code, output = _run(["--data", str(data_dir), "--spine", str(spine), "--out", str(out)],
                        capsys)
    assert code == 0, output
    assert pd.read_parquet(out).active_days_30d.tolist() == [20]


def test_spine_in_parquet_with_dates(make_dir, tmp_path, capsys):
    data_dir = make_dir(ACCOUNTS, _usage())
    spine = tmp_path / "spine.parquet"
    # 00:30 in Berlin is 23:30 UTC the day before: the date written (01-20, 20 days) counts,
    # not the UTC one (01-19, 19 days).
    as_of = pd.Timestamp("2024-01-20 00:30", tz="Europe/Berlin")
    pd.DataFrame({"account_id": ["a"], "as_of": [as_of]}).to_parquet(spine)
    out = tmp_path / "vectors.parquet"
    code, output = _run(["--data", str(data_dir), "--spine", str(spine), "--out", str(out)],
                        capsys)
    assert code == 0, output
    assert pd.read_parquet(out).active_days_30d.tolist() == [20]


@pytest.mark.parametrize(("rows", "header", "message"), [
    (["a,2024-01-31", "a,01/02/2024", ",2024-01-20"], "account_id,as_of",
     "2 of 3 row(s) without an account_id or a date as_of"),
    (["a,2024-01-31"], "account,as_of", "missing column(s) account_id"),
    ([], "account_id,as_of", "no rows"),
    ([], "", "no header row"),
    (["a,2024-01-31,x,y", "a,2024-01-20"], "account_id,as_of", "cannot be read: Length of header"),
    (["a,2024-01-31,1"], "account_id,as_of,active_days_30d", "active_days_30d are feature names"),
    # "NA" is an account id like any other (here an unknown one), not a missing value.
    (["NA,2024-01-31"], "account_id,as_of", "1 row(s) ask for an account unknown or not yet "
     "signed at as_of (accounts.signed_at), e.g. NA@2024-01-31"),
    # Text that only starts like a date is not one.
    (["a,2024-01-3100", "a,2024-01-31/2024-02-29"], "account_id,as_of", "2 of 2 row(s)"),
    # pandas would read a repeated name as "label.1"; trimmed, "account_id " repeats a key.
    (["a,2024-01-31,1,0"], "account_id,as_of,label,label", "'label' more than once"),
    (["a,2024-01-31,b"], "account_id,as_of,account_id ", "'account_id' more than once"),
    # "later" signed 2024-03-01: no vector can exist before that, the row is refused, not dropped.
    (["a,2024-01-31", "later,2024-02-01"], "account_id,as_of", "later@2024-02-01"),
])
def test_a_bad_spine_exits_2_naming_the_rows_and_writes_nothing(
        make_dir, tmp_path, capsys, rows, header, message):
    data_dir = make_dir(ACCOUNTS, _usage())
    spine = _spine_csv(tmp_path, rows, header)
    out = tmp_path / "vectors.parquet"
    code, output = _run(["--data", str(data_dir), "--spine", str(spine), "--out", str(out)],
                        capsys)
    assert code == 2
    assert message in output
    assert not out.exists()


@pytest.mark.parametrize("points", [["--as-of", "2024-01-31", "--spine", "spine.csv"], []])
def test_as_of_and_spine_are_one_or_the_other(make_dir, tmp_path, capsys, points):
    data_dir = make_dir(ACCOUNTS, _usage())
    out = tmp_path / "vectors.parquet"
    code, output = _run(["--data", str(data_dir), "--out", str(out), *points], capsys)
    assert code == 2
    assert "exactly one" in output
    assert not out.exists()


# -- usage ending before the as-of date: a warning, not an error ---------------------------

@pytest.mark.parametrize(("as_of", "warning"), [
    ("2024-02-09", None),  # the last usage day itself: complete data
    ("2024-02-10", "usage ends 2024-02-09, 1 day(s) before as-of 2024-02-10"),
    ("2024-02-19", "usage ends 2024-02-09, 10 day(s) before as-of 2024-02-19"),
])
def test_usage_ending_before_as_of_is_said(make_dir, as_of, warning):
    from datetime import date

    from features.freshness import stale_usage_warning
    from features.source import open_source

    source = open_source(make_dir(ACCOUNTS, _usage()))  # usage 2024-01-01..02-09
    said = stale_usage_warning(source, date.fromisoformat(as_of))
    if warning is None:
        assert said is None
    else:
        assert said.startswith(warning)
        assert "an as-of on or before 2024-02-09 reads complete data" in said


def test_the_command_warns_and_still_writes_the_vectors(make_dir, tmp_path, capsys):
    data_dir = make_dir(ACCOUNTS, _usage())
    out = tmp_path / "vectors.parquet"
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-02-19", "--out", str(out)],
                        capsys)
    assert code == 0, output
    assert "warning: usage ends 2024-02-09, 10 day(s) before as-of 2024-02-19" in output
    # The figures stay exact for the data given: the 10 days count as days without usage.
    vectors = pd.read_parquet(out).set_index("account_id")
    assert vectors.loc["a", "active_days_30d"] == 20

    spine = _spine_csv(tmp_path, ["a,2024-01-31", "a,2024-02-12"], "account_id,as_of")
    code, output = _run(["--data", str(data_dir), "--spine", str(spine), "--out", str(out)],
                        capsys)
    assert code == 0, output
    assert "usage ends 2024-02-09, 3 day(s) before as-of 2024-02-12" in output

    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", str(out)],
                        capsys)
    assert code == 0 and "warning" not in output


# -- the outputs: checked before any work, written only when the whole run succeeded -------

def _leftovers(folder) -> list[str]:
    """Every file under ``folder`` (outputs and hidden temporary files alike), data aside."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and not p.relative_to(folder).parts[0].startswith("data"))


@pytest.mark.parametrize("option", ["--out", "--daily-out"])
@pytest.mark.parametrize("how", ["direct", "dotdot", "symlink"])
def test_an_output_onto_a_file_of_the_data_directory_is_refused(
        make_dir, tmp_path, capsys, option, how):
    data_dir = make_dir(ACCOUNTS, _usage())
    table = data_dir / "usage.parquet"
    before = table.read_bytes()
    target = {"direct": table, "dotdot": data_dir / ".." / data_dir.name / "usage.parquet",
              "symlink": tmp_path / "link.parquet"}[how]
    if how == "symlink":
        target.symlink_to(table)
    outputs = {"--out": str(tmp_path / "vectors.parquet"),
               "--daily-out": str(tmp_path / "daily.parquet"), option: str(target)}
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31",
                         *[part for pair in outputs.items() for part in pair]], capsys)
    assert code == 2, output
    assert f"{option} {target} is a file of the data directory" in output
    assert "would overwrite your input" in output
    assert table.read_bytes() == before
    assert not (tmp_path / "vectors.parquet").exists()
    assert not (tmp_path / "daily.parquet").exists()


def test_the_data_directory_clash_is_refused_before_any_work(make_dir, tmp_path):
    from features.jobs import run_features
    from renewal.errors import ConfigError

    data_dir = make_dir(ACCOUNTS, _usage())
    steps: list[str] = []
    with pytest.raises(ConfigError, match="is a file of the data directory"):
        run_features(data_dir, None, data_dir / "accounts.parquet", on_step=steps.append,
                     spine=_spine_csv(tmp_path, ["a,2024-01-31"], "account_id,as_of"))
    assert steps == []  # not even validated


def test_daily_out_onto_out_is_refused(make_dir, tmp_path, capsys, monkeypatch):
    data_dir = make_dir(ACCOUNTS, _usage())
    monkeypatch.chdir(tmp_path)
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", "f.parquet",
                         "--daily-out", "./sub/../f.parquet"], capsys)
    assert code == 2, output
    assert ("--daily-out sub/../f.parquet is the same file as --out f.parquet: give each "
            "output its own path") in output
    assert not (tmp_path / "f.parquet").exists()


def test_a_failed_run_writes_neither_output(make_dir, tmp_path, capsys):
    data_dir = make_dir(ACCOUNTS, _usage())
    spine = _spine_csv(tmp_path, ["ZZZ,2024-01-31"], "account_id,as_of")  # an unknown account
    out_dir = tmp_path / "out"
    code, output = _run(["--data", str(data_dir), "--spine", str(spine),
                         "--out", str(out_dir / "f.parquet"),
                         "--daily-out", str(out_dir / "d.parquet")], capsys)
    assert code == 2, output
    assert "ZZZ@2024-01-31" in output
    assert _leftovers(out_dir) == []  # no daily table, no temporary file


@pytest.mark.parametrize("failing", ["--out", "--daily-out"])
def test_a_failed_rename_is_a_clear_error_and_leaves_the_old_outputs(
        make_dir, tmp_path, capsys, monkeypatch, failing):
    import errno
    import os

    data_dir = make_dir(ACCOUNTS, _usage())
    out, daily_out = tmp_path / "f.parquet", tmp_path / "d.parquet"
    out.write_bytes(b"old vectors")
    daily_out.write_bytes(b"old daily")
    target = {"--out": out, "--daily-out": daily_out}[failing]
    replace = os.replace

    def read_only(src, dst):
        if os.fspath(dst) == str(target):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", read_only)
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", str(out),
                         "--daily-out", str(daily_out)], capsys)
    assert code == 2, output
    assert f"{failing} {target} cannot be written: Read-only file system" in output
    assert "Traceback" not in output
    assert _leftovers(tmp_path) == ["d.parquet", "f.parquet"]  # no temporary file
    assert daily_out.read_bytes() == b"old daily"
    if failing == "--out":  # renamed first: when it fails, nothing is replaced
        assert out.read_bytes() == b"old vectors"
    else:  # at worst one complete new file: the vectors, beside the previous daily table
        assert pd.read_parquet(out).account_id.tolist() == ["a"]


@pytest.mark.parametrize(("make", "message"), [
    (lambda tmp: (tmp / "adir").mkdir() or tmp / "adir",
     "--out {path} is a directory: give a file path ending in .parquet"),
    (lambda tmp: (tmp / "a.parquet").mkdir() or tmp / "a.parquet",
     "--out {path} is a directory"),
    (lambda tmp: (tmp / "afile").touch() or tmp / "afile" / "sub" / "x.parquet",
     "--out {path} cannot be written: {tmp}/afile is not a directory"),
    (lambda tmp: tmp / "f.csv", "--out {path} must end in .parquet"),
])
def test_an_unwritable_out_is_refused_clearly(make_dir, tmp_path, capsys, make, message):
    data_dir = make_dir(ACCOUNTS, _usage())
    path = make(tmp_path)
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", str(path)],
                        capsys)
    assert code == 2, output
    assert message.format(path=path, tmp=tmp_path) in output
    assert "Traceback" not in output
    assert not path.is_file()


def test_a_read_only_directory_is_refused_up_front(make_dir, tmp_path, capsys, monkeypatch):
    import os

    data_dir = make_dir(ACCOUNTS, _usage())
    locked = tmp_path / "locked"
    locked.mkdir()
    access = os.access  # root passes permission bits: a read-only mount is simulated
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: (
        False if os.fspath(p) == str(locked) else access(p, mode, **kw)))
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31",
                         "--out", str(tmp_path / "f.parquet"),
                         "--daily-out", str(locked / "new" / "d.parquet")], capsys)
    assert code == 2, output
    assert (f"--daily-out {locked}/new/d.parquet cannot be written: {locked} is not writable"
            in output)
    assert _leftovers(tmp_path) == []


def test_daily_out_must_be_parquet_too_in_any_case(make_dir, tmp_path, capsys):
    data_dir = make_dir(ACCOUNTS, _usage())
    out = tmp_path / "f.PARQUET"
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", str(out),
                         "--daily-out", str(tmp_path / "d.csv")], capsys)
    assert code == 2, output
    assert f"--daily-out {tmp_path / 'd.csv'} must end in .parquet" in output
    assert _leftovers(tmp_path) == []
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-31", "--out", str(out)],
                        capsys)
    assert code == 0, output
    assert pd.read_parquet(out).account_id.tolist() == ["a"]


def test_an_as_of_before_every_signing_is_an_error(make_dir, tmp_path, capsys):
    data_dir = make_dir(ACCOUNTS, _usage())
    out, daily_out = tmp_path / "f.parquet", tmp_path / "d.parquet"
    code, output = _run(["--data", str(data_dir), "--as-of", "2023-12-31", "--out", str(out),
                         "--daily-out", str(daily_out)], capsys)
    assert code == 2, output
    assert ("no account is signed on or before --as-of 2023-12-31 (the earliest "
            "accounts.signed_at is 2024-01-01): no vector to write") in output
    assert _leftovers(tmp_path) == []
    # The signing day itself is enough.
    code, output = _run(["--data", str(data_dir), "--as-of", "2024-01-01", "--out", str(out)],
                        capsys)
    assert code == 0, output
    assert pd.read_parquet(out).account_id.tolist() == ["a"]
