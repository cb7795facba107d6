from embtune_pipeline.lib.secrets import is_secret, safe_params, secret_keys


def test_secrets_never_reach_params():
    params = safe_params({"epochs": 1, "api_key": "sk-123", "generator": {"api_base": "http://x", "auth_token": "t"},
                          "max_tokens": 64})
    assert params == {"epochs": 1, "generator.api_base": "http://x", "max_tokens": 64}


def test_secret_names_are_whole_words():
    assert all(map(is_secret, ["api_key", "apiKey", "OPENAI_API_KEY", "Authorization", "auth-token", "password"]))
    assert not any(map(is_secret, ["max_tokens", "keyword_boost", "monkey", "temperature"]))
    assert secret_keys({"extra_headers": {"Authorization": "Bearer x"}, "max_tokens": 9}) == [
        "extra_headers.Authorization"]


def test_an_excerpt_is_cut_after_the_secrets_are_blanked():
    from embtune_pipeline.lib.secrets import redacted_excerpt

    env = {"OPENAI_API_KEY": "sk-test-SECRET123456"}
    text = "x" * 284 + "sk-test-SECRET123456 is not a valid key"  # the key runs across character 300
    shown = redacted_excerpt(text, 300, env)
    assert "SECRET" not in shown and shown.startswith("x" * 284 + "[redacted]") and len(shown) <= 303
    assert redacted_excerpt("short", 300, env) == "short"
