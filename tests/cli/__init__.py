"""CLI tests: commands run through `engine.cli.main` in-process."""


def one_error_line(capsys, *words):
    """The captured stderr of a failed command: exactly one line, no traceback, naming every word
    in ``words`` (the file and the reason). Returns the line."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err
