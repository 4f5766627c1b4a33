"""lib/utils/errors.py: user errors end a script with one message and exit status 2."""

import pytest

from lib.utils.errors import UserError, register_user_error, run_cli


class _OldError(FileNotFoundError):
    pass


def test_user_error_is_one_message_and_status_2(capsys):
    def main():
        raise UserError("config 'x.yaml', key DATA.SEARCH.SIZE: expected a positive integer, got 'big'")

    assert run_cli(main, prog="prog.py", argv=None) == 2
    err = capsys.readouterr().err
    assert err.strip() == "prog.py: error: config 'x.yaml', key DATA.SEARCH.SIZE: expected a positive integer, got 'big'"
    assert "Traceback" not in err


def test_registered_class_counts_and_internal_errors_keep_their_traceback(capsys):
    register_user_error(_OldError)

    def user():
        raise _OldError("no file 'a.pth'")

    def internal():
        raise ZeroDivisionError("bug")

    assert run_cli(user, prog="p") == 2
    assert "p: error: no file 'a.pth'" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError):
        run_cli(internal, prog="p")


def test_verbose_reraises_and_return_values_pass_through():
    def main(argv):
        if argv == ["--verbose"]:
            raise UserError("shown with its traceback")
        return 1

    assert run_cli(main, prog="p", argv=[]) == 1
    with pytest.raises(UserError):
        run_cli(main, prog="p", argv=["--verbose"])


def test_ctrl_c_is_status_130(capsys):
    def main():
        raise KeyboardInterrupt

    assert run_cli(main, prog="p") == 130
    assert "interrupted" in capsys.readouterr().err
