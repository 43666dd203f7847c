"""Locust side of scripts/bench-load: the same two requests as the
turbulence-load and wrk runs, each response checked like ours does.

Users send an invalid token (expects 401/403) and a malformed JSON body
with a valid token (expects 400), in equal shares, with no wait time.
"""

from locust import FastHttpUser, constant, task

BODY = b'{"image_url":"https://example.com/a.jpg"}'
MALFORMED = b'{"image_url":"https://example.com/a.jpg",'
INVALID_TOKEN = {
    "Authorization": "Bearer turbulence-invalid-token",
    "Content-Type": "application/json",
}
VALID_TOKEN = {
    "Authorization": "Bearer demo-token",
    "Content-Type": "application/json",
}


class Abuser(FastHttpUser):
    wait_time = constant(0)

    @task
    def invalid_token(self):
        with self.client.post(
            "/moderate", data=BODY, headers=INVALID_TOKEN, catch_response=True, name="invalid-token"
        ) as response:
            if response.status_code in (401, 403):
                response.success()
            else:
                response.failure(f"expected 401 or 403, saw {response.status_code}")

    @task
    def malformed(self):
        with self.client.post(
            "/moderate", data=MALFORMED, headers=VALID_TOKEN, catch_response=True, name="malformed"
        ) as response:
            if response.status_code == 400:
                response.success()
            else:
                response.failure(f"expected 400, saw {response.status_code}")
