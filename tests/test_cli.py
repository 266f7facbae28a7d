"""The command line: every subcommand explains itself, and bad arguments get a clear error."""

import pytest

from ibntrack.cli import build_parser, main

SUBCOMMANDS = ("demo", "synth", "train", "track", "eval", "export")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_explains_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "usage: ibntrack " + command in text
    assert text.count("--") >= 3  # flags with their explanations


def test_top_level_help_lists_subcommands(capsys):
    assert main([]) == 2
    text = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in text


def test_synth_writes_a_sequence(tmp_path, capsys):
    code = main(
        [
            "synth",
            "--domain",
            "fog",
            "--frames",
            "3",
            "--objects",
            "2",
            "--size",
            "96x64",
            "--seed",
            "4",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    (seq,) = tmp_path.iterdir()
    assert len(list((seq / "img1").iterdir())) == 3
    assert "sceneKeywords=fog" in (seq / "seqinfo.ini").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["synth", "--size", "640by360", "--out", "x"], "WIDTHxHEIGHT"),
        (["synth", "--frames", "0", "--out", "x"], "positive integer"),
        (["track", "v.mp4", "--weights", "w.pt", "--conf", "1.5"], "in [0, 1]"),
    ],
)
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_domain_is_a_clear_error(tmp_path, capsys):
    assert main(["synth", "--domain", "mars", "--frames", "2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "mars" in err and "winter" in err
