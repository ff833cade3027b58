"""Moved to `tpf_testkit.registry_client` (bench/ shares it); re-exported for the tests."""

from tpf_testkit.registry_client import (
    ADMIN as ADMIN,
)
from tpf_testkit.registry_client import (
    ADMIN_B as ADMIN_B,
)
from tpf_testkit.registry_client import (
    CONTROL_PLANE_A as CONTROL_PLANE_A,
)
from tpf_testkit.registry_client import (
    FAKE_DISPATCHER_HOST as FAKE_DISPATCHER_HOST,
)
from tpf_testkit.registry_client import (
    TOKENS as TOKENS,
)
from tpf_testkit.registry_client import (
    VIEWER as VIEWER,
)
from tpf_testkit.registry_client import (
    WORKER_A as WORKER_A,
)
from tpf_testkit.registry_client import (
    RegistryClient as RegistryClient,
)
from tpf_testkit.registry_client import (
    auth_env as auth_env,
)
from tpf_testkit.registry_client import (
    declare_local_host as declare_local_host,
)
from tpf_testkit.registry_client import (
    registry_client as registry_client,
)
