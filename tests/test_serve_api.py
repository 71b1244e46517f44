"""`serpentir serve`'s HTTP API against a real server process: results equal `serpentir restore`'s file,
bad uploads get a one-line 4xx, a burst of requests is queued or refused with 503 and the server lives on,
and uploads never leave the server's temporary folder."""

import http.client
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from real_photos import photo_array
from serve_server import SMALLEST_TASK, cli_restore, get_json, post, running_server, stop
from serpentir import cli
from serpentir.checkpoint import read_metadata
from serpentir.infer import DEFAULT_TASK, WEIGHTS_DIR

MAX_UPLOAD_MB = 0.25
MAX_PIXELS = 200 * 200
QUEUE = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module, with small limits: (url, process, its TMPDIR, a folder of test photos)."""
    tmp = tmp_path_factory.mktemp("serve_api")
    with running_server(tmp / "server_tmp", "--max-upload-mb", str(MAX_UPLOAD_MB), "--max-pixels", str(MAX_PIXELS),
                        "--queue-size", str(QUEUE), "--workers", "1") as (url, process):
        yield url, process, tmp / "server_tmp", tmp


def photo_png(folder: Path, name: str, size=(64, 80), **crop) -> Path:
    path = folder / name
    Image.fromarray(photo_array(size=size, **crop)).save(path)
    return path


def restore_url(url, **query):
    return f"{url}/api/restore?{urllib.parse.urlencode(query)}"


def assert_json_error(status, headers, body, expected_status, needle):
    assert status == expected_status, (status, body)
    assert headers["content-type"].startswith("application/json")
    message = json.loads(body)["error"]
    assert "\n" not in message and needle in message, message


def test_models_lists_every_bundled_checkpoint_default_first(server):
    url, *_ = server
    answer = get_json(url + "/api/models")
    bundled = {read_metadata(p)["task"]["name"]: p.name for p in WEIGHTS_DIR.glob("*.safetensors")}
    assert {m["task"]: m["weights"] for m in answer["models"]} == bundled
    assert answer["default"] == DEFAULT_TASK == answer["models"][0]["task"] and answer["models"][0]["default"]
    assert sum(m["default"] for m in answer["models"]) == 1
    # the model that takes a mask beside the image is marked: an upload cannot carry one
    assert {m["task"] for m in answer["models"] if m["needs_mask"]} == {"inpaint"}


def test_restored_png_equals_the_command_line_result(server):
    url, _, server_tmp, tmp = server
    source = photo_png(tmp, "cat.png")
    status, headers, body = post(restore_url(url, task=SMALLEST_TASK, name="cat.png"), source.read_bytes())
    assert status == 200 and headers["content-type"] == "image/png"
    assert 'filename="cat-restored.png"' in headers["content-disposition"]
    reference = cli_restore(source, SMALLEST_TASK)
    assert body == reference  # the same file, so the same pixels
    restored = np.asarray(Image.open(io.BytesIO(body)))
    assert restored.shape == (64, 80, 3)
    assert not np.array_equal(restored, photo_array())  # it did restore something


def test_default_task_is_the_default_model(server):
    url, _, _, tmp = server
    source = photo_png(tmp, "small.png", size=(32, 40))
    status, _, body = post(url + "/api/restore", source.read_bytes())
    assert status == 200
    assert body == cli_restore(source, DEFAULT_TASK)


def test_garbage_is_refused_with_one_line_naming_the_upload(server):
    url, *_ = server
    assert_json_error(*post(restore_url(url, name="notes.txt"), b"this is not an image\n" * 10), 415, "notes.txt: not an image")


def test_truncated_image_is_refused_when_decoded(server):
    url, _, _, tmp = server
    data = photo_png(tmp, "whole.png").read_bytes()
    assert_json_error(*post(restore_url(url, name="cut.png", task=SMALLEST_TASK), data[: len(data) // 2]),
                      415, "cut.png: broken or truncated image")


def test_empty_body_is_refused(server):
    url, *_ = server
    assert_json_error(*post(restore_url(url, name="nothing.png"), b""), 400, "nothing.png: empty upload")


def test_unknown_task_is_refused(server):
    url, _, _, tmp = server
    status, headers, body = post(restore_url(url, task="sharpen"), photo_png(tmp, "t.png").read_bytes())
    assert_json_error(status, headers, body, 400, "no bundled model for task 'sharpen'")


def test_oversized_upload_is_refused_with_or_without_content_length(server):
    url, _, _, tmp = server
    metadata = PngInfo()  # a real photo under the pixel limit, carrying 300 KB of text (as big EXIF/ICC blocks do)
    metadata.add_text("comment", np.random.default_rng(0).bytes(150_000).hex())
    path = tmp / "noise.png"
    Image.fromarray(photo_array(size=(100, 100))).save(path, pnginfo=metadata)
    data = path.read_bytes()
    assert len(data) > MAX_UPLOAD_MB * 1024 * 1024
    assert_json_error(*post(restore_url(url, name="noise.png"), data), 413, "noise.png: upload is over the limit of 0.25 MB")
    # chunked, so the server only learns the size by counting
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    chunks = (data[i:i + 16384] for i in range(0, len(data), 16384))
    connection.request("POST", "/api/restore?name=noise.png", body=chunks, encode_chunked=True)
    response = connection.getresponse()
    assert_json_error(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read(), 413,
                      "over the limit")
    connection.close()


def test_too_many_pixels_are_refused_before_decoding(server):
    url, _, _, tmp = server
    path = tmp / "big.jpg"
    Image.fromarray(photo_array("astronaut", size=(250, 300), top=0, left=0)).save(path, quality=85)
    assert path.stat().st_size < MAX_UPLOAD_MB * 1024 * 1024  # small file, too many pixels
    assert_json_error(*post(restore_url(url, name="big.jpg"), path.read_bytes()), 413,
                      "big.jpg: 300x250 is 75,000 pixels, over the limit of 40,000")


def test_job_api_reports_progress_and_gives_the_same_png(server):
    url, _, _, tmp = server
    source = photo_png(tmp, "job.png", size=(48, 64))
    status, _, body = post(f"{url}/api/jobs?task={SMALLEST_TASK}&name=job.png", source.read_bytes())
    assert status == 202
    job = json.loads(body)
    assert job["state"] in ("queued", "running") and (job["width"], job["height"]) == (64, 48)
    seen = {job["state"]}
    deadline = time.monotonic() + 120
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
        job = get_json(f"{url}/api/jobs/{job['id']}")
        seen.add(job["state"])
    assert job["state"] == "done" and job["elapsed_s"] > 0, job
    with urllib.request.urlopen(url + job["result"]) as response:
        assert response.read() == cli_restore(source, SMALLEST_TASK)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{url}/api/jobs/no-such-job")
    assert e.value.code == 404


def test_eight_concurrent_requests_are_all_answered_and_the_server_stays_up(server):
    url, process, server_tmp, tmp = server
    source = photo_png(tmp, "burst.png", size=(160, 200), top=60, left=120)
    data = source.read_bytes()
    post(restore_url(url, task=SMALLEST_TASK), data)  # the model is loaded: the burst meets a warm server
    start = threading.Barrier(8)
    answers = [None] * 8

    def send(i):
        start.wait()
        answers[i] = post(restore_url(url, task=SMALLEST_TASK, name=f"burst{i}.png"), data)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    reference = cli_restore(source, SMALLEST_TASK)
    statuses = sorted(a[0] for a in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) >= 1 and statuses.count(200) >= 1, statuses  # 1 running + 2 waiting fit
    for status, headers, body in answers:
        if status == 200:
            assert body == reference
        else:
            assert int(headers["Retry-After"]) >= 1
            assert "busy" in json.loads(body)["error"]
    assert process.poll() is None
    status = get_json(url + "/api/status")
    assert status["running"] == 0 and status["waiting"] == 0
    assert list(server_tmp.iterdir()) and all(p.name.startswith("serpentir-serve-") for p in server_tmp.iterdir())
    assert [list(d.iterdir()) for d in server_tmp.iterdir()] == [[]]  # every upload deleted once answered
    peak_rss_mb = int(next(line for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
                           if line.startswith("VmHWM")).split()[1]) / 1024
    print(f"server peak RSS {peak_rss_mb:.0f} MB")
    assert peak_rss_mb < 2048


def test_stopping_the_server_removes_its_temporary_folder(tmp_path):
    source = photo_png(tmp_path, "one.png", size=(32, 40))
    with running_server(tmp_path / "server_tmp") as (url, process):
        status, _, _ = post(restore_url(url, task=SMALLEST_TASK), source.read_bytes())
        assert status == 200
        assert len(list((tmp_path / "server_tmp").iterdir())) == 1
        code, err = stop(process)
    assert code == 0, err
    assert list((tmp_path / "server_tmp").iterdir()) == []


def test_a_busy_port_is_a_one_line_error(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["serve", "--port", str(port), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"serpentir: error: cannot listen on 127.0.0.1:{port}") and err.count("\n") == 1
