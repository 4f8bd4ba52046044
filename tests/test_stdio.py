import os

from kerashw.stdio import fd2_to


def test_fd2_to_diverts_and_restores(tmp_path, capfd):
    log = tmp_path / "log"
    with open(log, "wb") as sink, fd2_to(sink.fileno()) as terminal:
        os.write(2, b"from C code\n")  # what TensorFlow's C++ logging does
        os.write(terminal, b"to the terminal\n")
    os.write(2, b"after\n")
    assert log.read_bytes() == b"from C code\n"
    err = capfd.readouterr().err
    assert err == "to the terminal\nafter\n"
