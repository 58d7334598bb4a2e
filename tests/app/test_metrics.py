"""/metrics: what on call reads in Prometheus, and nothing about visitors or their photos."""

import re

from prometheus_client.parser import text_string_to_metric_families


def scrape(client):
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    return answer.get_data(as_text=True)


def samples(text, name):
    return {tuple(sorted(s.labels.items())): s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


def test_requests_matches_faces_encodings_and_release(client, upload, photos):
    before = samples(scrape(client), "face_rec_http_requests_total")
    assert upload((photos / "obama2.jpg").read_bytes(), cast="presidents").status_code == 200
    assert upload(b"not an image").status_code == 415
    assert client.get("/no/such/page").status_code == 404
    text = scrape(client)
    after = samples(text, "face_rec_http_requests_total")

    def grew(endpoint, method, status):
        key = (("endpoint", endpoint), ("method", method), ("status", status))
        return after.get(key, 0) - before.get(key, 0)
    assert grew("/api/v1/match", "POST", "200") == 1 and grew("/api/v1/match", "POST", "415") == 1
    assert grew("unmatched", "GET", "404") == 1
    assert samples(text, "face_rec_match_duration_seconds_count")[()] >= 1
    assert samples(text, "face_rec_faces_per_photo_sum")[()] >= 1
    assert samples(text, "face_rec_known_encodings") == {(("cast", "presidents"),): 2}
    assert list(samples(text, "face_rec_release_info").values()) == [1]


def test_nothing_identifies_a_visitor_or_a_photo(client, upload, photos):
    upload((photos / "obama2.jpg").read_bytes(), name="my-holiday.jpg", cast="presidents")
    client.get("/casts/presidents?visitor=alice", headers={"X-Real-IP": "198.51.100.7"})
    text = scrape(client)
    for secret in ("my-holiday", "alice", "198.51.100.7", "obama2", "127.0.0.1"):
        assert secret not in text
    assert not re.search(r'endpoint="/casts/presidents"', text)  # route templates, not paths
