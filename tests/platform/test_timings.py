"""The execution profile: sections of an executed notebook and the tables built from them."""

import json

from diffctrl_book import timings


def _code(src, seconds):
    return {
        "cell_type": "code",
        "source": src,
        "metadata": {"papermill": {"duration": seconds}},
    }


NB = {
    "metadata": {
        "diffctrl": {
            "profile": "full",
            "seconds": 20.0,
            "cpu_seconds": 18.5,
            "threads": 1,
            "device": "cpu",
        }
    },
    "cells": [
        {"cell_type": "markdown", "source": "# Title\n\nWhat this reproduces."},
        _code("import torch\nx = 1", 1.5),
        _code("# parameters only\n", 0.25),
        {"cell_type": "markdown", "source": "Some text\n\n## First part\n"},
        _code("# a comment\nrun = train(model, steps=1000)\n", 12.0),
        _code("plot(run)", 0.75),
        {"cell_type": "markdown", "source": "### a sub-heading stays in its section"},
        _code("more()", 2.0),
        {"cell_type": "markdown", "source": "## Empty section\n"},
        {"cell_type": "markdown", "source": "## Second | part"},
        _code("verdict()", 0.5),
        {"cell_type": "code", "source": "never_run()", "metadata": {}},
    ],
}


def test_sections_sum_their_cells_and_name_the_slowest():
    prof = timings.notebook_profile(NB)
    assert (prof["seconds"], prof["cpu_seconds"], prof["device"]) == (20.0, 18.5, "cpu")
    got = [(s["title"], s["seconds"], s["cells"]) for s in prof["sections"]]
    # the empty section is left out; the unexecuted cell counts nowhere
    assert got == [
        ("set-up", 1.8, 2),
        ("First part", 14.8, 3),
        ("Second | part", 0.5, 1),
    ]
    first = prof["sections"][1]
    assert first["top_line"] == "run = train(model, steps=1000)"
    assert first["top_seconds"] == 12.0


def test_tables_from_a_folder_and_a_run(tmp_path):
    (tmp_path / "b.ipynb").write_text(json.dumps(NB))
    (tmp_path / "a.ipynb").write_text(json.dumps(NB))
    (tmp_path / "a.failed.ipynb").write_text("not read")
    rows = timings.profile_rows(tmp_path, order=["b", "missing", "a"])
    assert [r["notebook"] for r in rows] == ["b", "a"]
    run = {
        "profile": "full",
        "jobs": 2,
        "threads": 1,
        "cpu_count": 2,
        "wall_s": 30.0,
        "cpu_s": 55.0,
        "reused": [],
        "since_command_start_s": 95.0,
        "tasks": [{"name": "digit U-Net", "kind": "prerequisite", "seconds": 9.0}],
    }
    text = timings.profile_text(rows, run, min_seconds=1.0)
    assert "| **all notebooks** | | 40 | 37 | | |" in text
    assert "| b | First part | 14.8 | `run = train(model, steps=1000)` (12.0) |" in text
    assert "Second \\| part" not in text  # 0.5 s: under the threshold
    assert "in 30 s wall (55 CPU-s)" in text and "running for 95 s" in text
    assert "| digit U-Net | prerequisite | 9 | – |" in text
    page = timings.profile_page(rows, None)
    assert page.startswith("# Execution profile\n") and "Last execute run" not in page
    assert "does not measure the GPU path" in page
    gpu = dict(rows[0], device="cuda:0 (NVIDIA H200)")
    assert "ran on cuda:0 (NVIDIA H200)." in timings.profile_page([gpu], None)
    assert timings.read_run(tmp_path) is None
    timings.write_run(tmp_path, run)
    assert timings.read_run(tmp_path) == run
