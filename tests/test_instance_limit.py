"""At --max-instances, creating one more is a 429 that says when to try again."""


def test_a_create_past_the_instance_limit_is_429_with_retry_after(serve):
    srv = serve(env_id="CartPole-v1", max_instances=2)
    assert srv.post("/envs", {}).status == 201
    reply = srv.post("/envs", {})
    assert reply.status == 429 and reply.body["code"] == "too_many_instances", reply.body
    assert "retry-after" in reply.headers, reply.headers
    assert int(reply.headers["retry-after"]) > 0


def test_a_create_within_the_limit_carries_no_retry_after(serve):
    srv = serve(env_id="CartPole-v1", max_instances=2)
    reply = srv.post("/envs", {})
    assert reply.status == 201 and "retry-after" not in reply.headers
