"""docker/compose.yaml agrees with the deployment's dagster.yaml and workspace.yaml: the same storage, the same
code-server port, the same MLflow URI. Docker itself is not needed (nor reachable here): the file is parsed."""

import re
from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
DAGSTER_SERVICES = ("embtune-code", "dagster-webserver", "dagster-daemon")


def env_vars_read_by(path: Path) -> set[str]:
    """The `{env: NAME}` values a Dagster YAML file reads."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if set(node) == {"env"}:
                found.add(node["env"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load(path.read_text()))
    return found


def option(command: list, flag: str) -> str:
    command = [str(t) for t in command]
    return command[command.index(flag) + 1]


def test_every_dagster_process_gets_what_the_instance_and_workspace_read():
    needed = env_vars_read_by(DOCKER / "dagster.yaml") | env_vars_read_by(DOCKER / "workspace.yaml")
    assert {"DAGSTER_POSTGRES_HOST", "EMBTUNE_CODE_SERVER_HOST", "EMBTUNE_CODE_SERVER_PORT"} <= needed
    for name in DAGSTER_SERVICES:
        env = SERVICES[name]["environment"]
        assert needed <= set(env), f"{name} lacks {needed - set(env)}"
        assert env["DAGSTER_HOME"] == "/opt/dagster/home"
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "COPY docker/dagster.yaml docker/workspace.yaml /opt/dagster/home/" in dockerfile


def test_storage_is_the_postgres_service():
    instance = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    assert set(instance["storage"]) == {"postgres"}
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance["concurrency"]["pools"]["default_limit"] == 1  # the gpu pool
    pg = SERVICES["postgres"]["environment"]
    env = SERVICES["embtune-code"]["environment"]
    assert env["DAGSTER_POSTGRES_HOST"] == "postgres" and env["DAGSTER_POSTGRES_PORT"] == "5432"
    assert (env["DAGSTER_POSTGRES_USER"], env["DAGSTER_POSTGRES_DB"]) == (pg["POSTGRES_USER"], pg["POSTGRES_DB"])
    assert env["DAGSTER_POSTGRES_PASSWORD"] == pg["POSTGRES_PASSWORD"]
    # MLflow's backend store: the same server, its own database, made by the init script
    store = option(SERVICES["mlflow"]["command"], "--backend-store-uri")
    m = re.fullmatch(r"postgresql\+psycopg2://(\w+):(\S+)@postgres:5432/(\w+)", store)
    assert m and m.group(1) == pg["POSTGRES_USER"] and m.group(2) == pg["POSTGRES_PASSWORD"]
    assert f"CREATE DATABASE {m.group(3)};" in (DOCKER / "postgres-init.sql").read_text()
    init = [v for v in SERVICES["postgres"]["volumes"] if v.startswith("./postgres-init.sql:")]
    assert init and init[0].split(":")[1].startswith("/docker-entrypoint-initdb.d/")


def test_the_code_server_is_where_the_workspace_points():
    command = SERVICES["embtune-code"]["command"]
    port = option(command, "-p")
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    assert option(command, "--location-name") == workspace["location_name"]
    for name in DAGSTER_SERVICES:
        env = SERVICES[name]["environment"]
        assert (env["EMBTUNE_CODE_SERVER_HOST"], env["EMBTUNE_CODE_SERVER_PORT"]) == ("embtune-code", port)
    for name in ("dagster-webserver", "dagster-daemon"):
        assert option(SERVICES[name]["command"], "-w") == "/opt/dagster/home/workspace.yaml"
        assert SERVICES[name]["depends_on"]["embtune-code"]["condition"] == "service_healthy"
    assert option(SERVICES["dagster-webserver"]["command"], "-p") == "3000"
    assert "127.0.0.1:3000:3000" in SERVICES["dagster-webserver"]["ports"]


def test_runs_log_to_the_mlflow_service_and_its_artifact_volume():
    command = SERVICES["mlflow"]["command"]
    port = option(command, "--port")
    assert SERVICES["embtune-code"]["environment"]["EMBTUNE_MLFLOW_TRACKING_URI"] == f"http://mlflow:{port}"
    assert f"127.0.0.1:{port}:{port}" in SERVICES["mlflow"]["ports"]
    assert "mlflow:*" in option(command, "--allowed-hosts").split(",")  # the name the code server uses
    assert SERVICES["mlflow"]["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    destination = option(command, "--artifacts-destination")
    assert destination == "${MLFLOW_ARTIFACTS_DESTINATION:-/mlartifacts}"
    assert "mlflow-artifacts:/mlartifacts" in SERVICES["mlflow"]["volumes"]
    assert "embtune-data:/data" in SERVICES["embtune-code"]["volumes"]
    assert SERVICES["embtune-code"]["environment"]["EMBTUNE_DATA_DIR"] == "/data"
    # step logs written by runs in the code server are read by the webserver: one shared volume
    logs = SERVICES["embtune-code"]["environment"]["DAGSTER_COMPUTE_LOGS_DIR"]
    for name in ("embtune-code", "dagster-webserver"):
        assert f"dagster-logs:{logs}" in SERVICES[name]["volumes"]


def test_secrets_come_from_the_environment_never_the_compose_file():
    from embtune_pipeline.lib.secrets import is_secret

    secret_values = {(name, key): value for name, service in SERVICES.items()
                     for key, value in (service.get("environment") or {}).items() if is_secret(key)}
    assert ("mlflow", "AWS_SECRET_ACCESS_KEY") in secret_values
    literal = {k: v for k, v in secret_values.items() if not str(v).startswith("${")}
    assert not literal, f"secrets written into compose.yaml: {literal}"
    assert SERVICES["embtune-code"]["env_file"] == [{"path": "./secrets.env", "required": False}]
    assert "docker/secrets.env" in (DOCKER.parent / ".gitignore").read_text().split()
