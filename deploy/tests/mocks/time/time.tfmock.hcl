# The time provider, mocked for deploy/tests: time_sleep does not sleep,
# and the first apply happened at a known instant. The instant is known
# at plan time too (override_during = plan), as the staleness alerts'
# queries read it in plan-only runs; and every computed attribute is
# fixed, or the mock's random values at plan would differ from those at
# apply ("Provider produced inconsistent final plan").

override_resource {
  target          = time_static.deployed
  override_during = plan
  values = {
    id      = "2025-12-02T00:00:00Z"
    rfc3339 = "2025-12-02T00:00:00Z"
    unix    = 1764633600
    year    = 2025
    month   = 12
    day     = 2
    hour    = 0
    minute  = 0
    second  = 0
  }
}
