"""Sub-source names and container selection."""

from __future__ import annotations

from watcher.config import DockerSourceConfig
from watcher.sources.docker.names import list_filters, one_shot, selected, sub_source

COMPOSE = {"com.docker.compose.project": "novavms", "com.docker.compose.service": "api"}


def cfg(**kw: object) -> DockerSourceConfig:
    return DockerSourceConfig.model_validate({"name": "cloud", "kind": "docker", **kw})


class TestNames:
    def test_compose_service(self) -> None:
        """A compose container is named for its service; replica n > 1 gets `-n`."""
        assert sub_source("cloud", "/novavms-api-1", COMPOSE) == "cloud/api"
        labels = {**COMPOSE, "com.docker.compose.container-number": "2"}
        assert sub_source("cloud", "/novavms-api-2", labels) == "cloud/api-2"

    def test_plain_container(self) -> None:
        """Outside compose, the container name; unsafe characters replaced."""
        assert sub_source("cloud", "/sfu", {}) == "cloud/sfu"
        assert sub_source("cloud", "/a b", {}) == "cloud/a_b"


class TestSelection:
    def test_compose_project(self) -> None:
        """compose_project selects by the project label."""
        assert selected(cfg(compose_project="novavms"), "/x", COMPOSE)
        assert not selected(cfg(compose_project="other"), "/x", COMPOSE)
        project = ["com.docker.compose.project=novavms"]
        assert list_filters(cfg(compose_project="novavms")) == {"label": project}

    def test_names_or_services(self) -> None:
        """containers lists container names or compose service names."""
        assert selected(cfg(containers=["sfu"]), "/sfu", {})
        assert selected(cfg(containers=["api"]), "/novavms-api-1", COMPOSE)
        assert not selected(cfg(containers=["sfu"]), "/sfu2", {})

    def test_labels_all_required(self) -> None:
        """Every label must match; an empty value means any value."""
        c = cfg(labels={"team": "media", "tier": ""})
        assert selected(c, "/x", {"team": "media", "tier": "1"})
        assert not selected(c, "/x", {"team": "media"})
        assert list_filters(c) == {"label": ["team=media", "tier"]}


class TestOneShot:
    def test_services_and_containers_named_one_shot(self) -> None:
        """one_shot names a compose service (any replica) or a container."""
        c = cfg(compose_project="novavms", one_shot=["migrate", "init db"])
        assert one_shot(c, "cloud/migrate") and one_shot(c, "cloud/migrate-2")
        assert one_shot(c, "cloud/init_db")
        assert not one_shot(c, "cloud/api") and not one_shot(c, "cloud/migrate-x")
