"""geoseg.cli.errors: what a user sees when a command is stopped or fails."""

from __future__ import annotations

import os
import signal

import click
import pytest
from click.testing import CliRunner

from geoseg.cli.errors import handle_errors
from geoseg.errors import InputError


def _command(resume=None, fail=None):
    deco = handle_errors(resume=resume) if resume else handle_errors

    @click.command()
    @deco
    def cmd():
        if fail is not None:
            raise fail
        os.kill(os.getpid(), signal.SIGTERM)  # a real signal, as the QGIS plugin's cancel sends

    return cmd


@pytest.fixture(autouse=True)
def _restore_sigterm():
    old = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, old)


@pytest.mark.parametrize("resume", ["the finished tiles", "the last checkpoint"])
def test_sigterm_says_what_a_rerun_resumes_from(resume):
    res = CliRunner().invoke(_command(resume=resume))
    assert res.exit_code == 143
    assert res.output.strip() == f"geoseg: terminated; rerun the same command to resume from {resume}"


def test_sigterm_of_a_command_that_cannot_resume_promises_nothing():
    res = CliRunner().invoke(_command())
    assert res.exit_code == 143 and res.output.strip() == "geoseg: terminated"


def test_input_error_is_one_line_exit_2():
    res = CliRunner().invoke(_command(fail=InputError("no CRS in x.tif; assign one with gdal_edit.py -a_srs")))
    assert res.exit_code == 2
    assert res.output.strip() == "geoseg: error: no CRS in x.tif; assign one with gdal_edit.py -a_srs"
