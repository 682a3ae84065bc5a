"""`coconut data download`: files served by a local HTTP server on 127.0.0.1 that the test starts.

Covers a checked download, a checksum mismatch (nothing written, an existing file untouched), an unreachable
server (a one-line error), a file already present (kept, not fetched again), and the pinned checksums against
the reference copies of the released files when they are beside the checkout.
"""

import hashlib
import http.server
import socket
import threading
from functools import partial
from pathlib import Path

import pytest

from coconut.cli.main import main
from coconut.data import download as download_module
from coconut.data.download import DownloadError, download_release
from coconut.data.release import RELEASES, ReleaseFile, file_digests
from tests.shared_data import shared_file


class Server:
    """A static file server on 127.0.0.1 over a folder, recording the paths asked for."""

    def __init__(self, root: Path):
        requested = self.requested = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                requested.append(self.path)
                super().do_GET()

            def log_message(self, *args):  # keep pytest's output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    server = Server(root)
    yield root, server
    server.close()


def pinned(name: str, content: bytes, **extra) -> ReleaseFile:
    """A manifest entry for `content`, its sha256 computed here with hashlib."""
    return ReleaseFile(name, f"https://example.invalid/data/{name}", hashlib.sha256(content).hexdigest(), **extra)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_writes_the_checked_files_and_nothing_else(served, tmp_path):
    root, server = served
    contents = {"a.json": b'[{"question": "q", "steps": [], "answer": "a"}]\n', "b.txt": b"x||<<1+1=2>> #### 2\n"}
    for name, data in contents.items():
        (root / name).write_bytes(data)
    files = [pinned(name, data) for name, data in contents.items()]
    out = tmp_path / "out"
    paths = download_release("test", out, base_url=server.url, files=files, progress=False, log=lambda _: None)
    assert paths == [out / "a.json", out / "b.txt"]
    assert {p.name: p.read_bytes() for p in paths} == contents
    assert listing(out) == ["a.json", "b.txt"], "no temporary file is left beside them"
    assert server.requested == ["/a.json", "/b.txt"], "each file is fetched from BASE_URL/<its remote name>"
    from coconut.atomic import creation_mode

    assert {p.stat().st_mode & 0o777 for p in paths} == {creation_mode()}, "as readable as any new file, not private"


def test_a_checksum_mismatch_writes_nothing_and_keeps_the_old_file(served, tmp_path):
    root, server = served
    (root / "a.json").write_bytes(b"what the server has")
    release = pinned("a.json", b"what the release has")
    out = tmp_path / "out"
    with pytest.raises(DownloadError) as err:
        download_release("test", out, base_url=server.url, files=[release], progress=False, log=lambda _: None)
    message = str(err.value)
    assert "\n" not in message and f"{server.url}/a.json" in message and release.sha256 in message
    assert listing(out) == [] and not out.exists(), "neither the file, a partial one nor the folder appears"
    # A file already there with the wrong content stays as it was when the download does not check out either.
    out.mkdir()
    (out / "a.json").write_bytes(b"old")
    with pytest.raises(DownloadError):
        download_release("test", out, base_url=server.url, files=[release], progress=False, log=lambda _: None)
    assert listing(out) == ["a.json"] and (out / "a.json").read_bytes() == b"old"


def test_the_git_blob_id_is_checked_too(served, tmp_path):
    root, server = served
    (root / "a.json").write_bytes(b"content")
    # Right sha256, wrong git blob id: refused. `git hash-object` of b"content" is 6b584e8e...; a wrong one here.
    release = pinned("a.json", b"content", git_blob="0" * 40)
    with pytest.raises(DownloadError, match="git blob id 6b584e8ece562ebffc15d38808cd6b98fc3d97ea is not"):
        download_release("test", tmp_path / "out", base_url=server.url, files=[release], progress=False)
    assert listing(tmp_path / "out") == []


def test_a_file_already_right_is_kept_and_a_wrong_one_replaced(served, tmp_path):
    root, server = served
    good, bad = b"good bytes", b"other bytes"
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.json").write_bytes(good)
    (out / "replaced.json").write_bytes(bad)
    (root / "replaced.json").write_bytes(good)
    logged = []
    download_release("test", out, base_url=server.url, files=[pinned("kept.json", good), pinned("replaced.json", good)],
                     progress=False, log=logged.append)
    assert server.requested == ["/replaced.json"], "a file whose checksum matches is not fetched again"
    assert (out / "replaced.json").read_bytes() == good
    assert "present, checksum matches" in logged[0] and "present but its sha256" in logged[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_one_line_naming_the_host(tmp_path, capsys):
    port = closed_port()
    out = tmp_path / "gsm8k"
    code = main(["data", "download", "gsm8k", "--to", str(out), "--base-url", f"http://127.0.0.1:{port}",
                 "--timeout", "5"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"coconut data download: cannot reach 127.0.0.1:{port}")
    assert err.endswith(f"on a machine with network access and copy it into {out}")
    assert listing(out) == [] and not out.exists(), "no empty --to folder left behind"


def test_http_errors_are_one_line(served, tmp_path):
    _, server = served
    with pytest.raises(DownloadError, match=r"/missing.json: HTTP 404 .*; .*missing.json not written$"):
        download_release("test", tmp_path, base_url=server.url, files=[pinned("missing.json", b"x")], progress=False)


def test_the_cli_checks_against_the_pinned_checksums(served, tmp_path, capsys):
    """Files that are not the release, served under the release's names, are refused with the real pins."""
    root, server = served
    for release in RELEASES["prosqa"]:
        (root / release.remote_name).write_text("[]")
    out = tmp_path / "prosqa"
    assert main(["data", "download", "prosqa", "--to", str(out), "--base-url", server.url]) == 2
    err = capsys.readouterr().err.strip()
    # The release's git blob id decides where one is known (read from the release's own tree).
    assert "\n" not in err and "prosqa_train.json" in err and RELEASES["prosqa"][0].git_blob in err
    assert listing(out) == []


def test_a_bigger_answer_than_the_release_is_cut_off(served, tmp_path):
    root, server = served
    (root / "a.json").write_bytes(b"x" * (3 << 20))
    release = pinned("a.json", b"x" * 10, size=10)
    with pytest.raises(DownloadError, match="more than the release's 10 bytes"):
        download_release("test", tmp_path / "out", base_url=server.url, files=[release], progress=False)
    assert listing(tmp_path / "out") == []


def test_big_files_show_progress(served, tmp_path, capsys, monkeypatch):
    root, server = served
    data = b"y" * (2 << 20)
    (root / "big.bin").write_bytes(data)
    monkeypatch.setattr(download_module, "PROGRESS_FROM", 1 << 20)
    download_release("test", tmp_path / "out", base_url=server.url, files=[pinned("big.bin", data)], log=lambda _: None)
    assert "big.bin: 2.1 / 2.1 MB" in capsys.readouterr().err


def test_prontoqa_says_how_to_make_it(capsys):
    assert main(["data", "download", "prontoqa", "--to", "somewhere"]) == 2  # nothing was downloaded
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "f0145b867b3c106285ec9ea1941a3f6eb7c6162d" in err
    assert ("run_experiment.py --model-name json --model-size dummy --ordering random --num-trials 10000 "
            "--few-shot-examples 0 --ontology fictional --min-hops 5 --max-hops 5 --hops-skip 1") in err
    assert "coconut data prontoqa-convert /path/to/prontoqa/5hop_0shot_random.json --to somewhere" in err


@pytest.mark.parametrize("dataset, name, reference", [("prosqa", "prosqa_valid.json", "prosqa_valid.json"),
                                                      ("gsm8k", "valid.txt", "gsm8k_icot_valid.txt")])
def test_the_pins_are_those_of_the_released_files(dataset, name, reference):
    """The reference copies of the released files (beside the checkout) have the pinned sha256 and git blob id."""
    release = next(r for r in RELEASES[dataset] if r.name == name)
    assert file_digests(shared_file(reference)) == (release.sha256, release.git_blob)
    assert shared_file(reference).stat().st_size == release.size


def test_the_cli_downloads_and_notes_a_generated_file_beside_the_release(served, tmp_path, capsys, monkeypatch):
    root, server = served
    data = b'[{"question": "q", "steps": [], "answer": "a"}]'
    (root / "prosqa_train.json").write_bytes(data)
    monkeypatch.setitem(RELEASES, "prosqa", (pinned("prosqa_train.json", data),))
    out = tmp_path / "prosqa"
    out.mkdir()
    (out / "train.json").write_text("[]")  # generated by an earlier run
    assert main(["data", "download", "prosqa", "--to", str(out), "--base-url", server.url]) == 0
    captured = capsys.readouterr()
    assert (out / "prosqa_train.json").read_bytes() == data
    assert f"{out / 'prosqa_train.json'}: downloaded, checksum matches the release" in captured.out
    assert captured.err.strip() == (f"coconut data download: note: {out}: holds train.json and prosqa_train.json "
                                    f"for the train split; remove all but one, or name one with data.train_file")


def test_the_data_commands_do_not_import_torch(tmp_path):
    import subprocess
    import sys

    probe = ("import sys\nfrom coconut.cli.main import main\n"
             f"main(['data', 'download', 'gsm8k', '--to', {str(tmp_path)!r}, '--base-url', "
             f"'http://127.0.0.1:{closed_port()}', '--timeout', '5'])\n"
             f"main(['data', 'prontoqa-convert', {str(tmp_path / 'absent.json')!r}])\n"
             "print('torch loaded:', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "torch loaded: False" and "cannot reach 127.0.0.1" in out.stderr
