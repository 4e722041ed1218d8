# The time provider, mocked for deploy/tests: time_sleep does not sleep,
# and the first apply happened at a known instant.

override_resource {
  target = time_static.deployed
  values = {
    unix = 1764633600 # 2025-12-02T00:00:00Z
  }
}
