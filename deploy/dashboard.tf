# One Cloud Monitoring dashboard for every enabled dataset: a header and
# the same charts for each, from the metrics the job exports (the gcp
# exporter names them workload.googleapis.com/DATASET.NAME, on the
# generic_task resource whose job label is the Cloud Run job's name: see
# monitoring.tf). It is built from local.datasets, so a dataset enabled in
# var.datasets gets its charts without an edit here; cmd/job's
# TestDashboard checks every chart's metric and labels against the ones
# the job records.
#
# The counters and the duration histogram are CUMULATIVE, one series per
# execution (service.instance.id), so a daily ALIGN_DELTA summed across
# series is one day's figure whatever the number of runs. The job runs
# once a day: the charts are read over weeks (pick 30 days in the
# console), not over the console's default hour.

locals {
  # Per dataset, its charts: a title, how to plot it, and its metrics as
  # filters (over this dataset's job, summed across series unless a
  # reducer is given) or PromQL queries, and threshold lines.
  dashboard_charts = {
    for name, d in local.datasets : name => [
      {
        title = "${name}: records published per day, by cert_status"
        plot  = "STACKED_BAR"
        filters = [{
          filter   = "metric.type=\"workload.googleapis.com/${name}.records\" AND metric.labels.outcome=\"written\""
          group_by = ["metric.label.cert_status"]
        }]
      },
      {
        title = "${name}: plots added, removed and changed per day"
        plot  = "LINE"
        filters = [{
          filter   = "metric.type=\"workload.googleapis.com/${name}.changes\""
          group_by = ["metric.label.kind"]
        }]
      },
      {
        title = "${name}: status transitions per day, by from and to"
        plot  = "STACKED_BAR"
        filters = [{
          filter   = "metric.type=\"workload.googleapis.com/${name}.status_transitions\""
          group_by = ["metric.label.from", "metric.label.to"]
        }]
      },
      {
        title = "${name}: dropped records (by reason) and invalid values (by column and reason) per day"
        plot  = "STACKED_BAR"
        filters = [
          {
            filter   = "metric.type=\"workload.googleapis.com/${name}.records\" AND metric.labels.outcome=\"dropped\""
            group_by = ["metric.label.reason"]
          },
          {
            filter   = "metric.type=\"workload.googleapis.com/${name}.invalid_values\""
            group_by = ["metric.label.column", "metric.label.reason"]
          },
        ]
      },
      {
        # A histogram: the day's mean per phase is exact (sum / count),
        # where a percentile would be interpolated within a bucket.
        title = "${name}: run duration of published runs, by phase (mean of the day)"
        plot  = "LINE"
        filters = [{
          filter   = "metric.type=\"workload.googleapis.com/${name}.run.duration\" AND metric.labels.outcome=\"success\""
          group_by = ["metric.label.phase"]
          reducer  = "REDUCE_MEAN"
        }]
      },
      {
        title = "${name}: fetch attempts per day, by outcome"
        plot  = "STACKED_BAR"
        filters = [{
          filter   = "metric.type=\"workload.googleapis.com/${name}.fetch.attempts\""
          group_by = ["metric.label.outcome"]
        }]
      },
      {
        # last_success is a gauge of the Unix time of the last publish:
        # only PromQL subtracts it from now. The window reaches twice as
        # far back as the staleness alert's, so that when runs stop the
        # line climbs past the threshold before it ends.
        title = "${name}: hours since the last published snapshot"
        plot  = "LINE"
        promql = [
          "(time() - max(max_over_time(workload_googleapis_com:${d.last_success}{monitored_resource=\"generic_task\",job=\"${d.job_name}\"}[${2 * var.staleness_hours}h]))) / 3600",
        ]
        thresholds = [{ label = "staleness alert", value = var.staleness_hours, targetAxis = "Y1" }]
      },
    ]
  }

  # On a 12-column mosaic, per dataset in name order: a header row, then
  # its charts two to a row, each 6 wide and 4 high.
  dashboard_block_height = 1 + 4 * ceil(max(0, [for charts in values(local.dashboard_charts) : length(charts)]...) / 2)
  dashboard_tiles = flatten([
    for i, name in sort(keys(local.datasets)) : concat(
      # The API leaves a position of 0 out of the dashboard it returns,
      # and the provider would show a 0 it does not get back as a change
      # on every plan: so a 0 is left out here too.
      [merge({ for k, v in { xPos = 0, yPos = i * local.dashboard_block_height } : k => v if v > 0 }, {
        width  = 12
        height = 1
        widget = {
          text = {
            content = "**${name}**: Cloud Run job `${local.datasets[name].job_name}`, snapshots under `${local.datasets[name].output_prefix}/`"
            format  = "MARKDOWN"
          }
        }
      })],
      [for j, chart in local.dashboard_charts[name] : merge({ for k, v in { xPos = 6 * (j % 2), yPos = i * local.dashboard_block_height + 1 + 4 * floor(j / 2) } : k => v if v > 0 }, {
        width  = 6
        height = 4
        widget = {
          title = chart.title
          xyChart = merge(
            {
              chartOptions = { mode = "COLOR" }
              dataSets = concat(
                [for f in try(chart.filters, []) : {
                  plotType   = chart.plot
                  targetAxis = "Y1"
                  timeSeriesQuery = {
                    timeSeriesFilter = {
                      filter = "${f.filter} AND resource.type=\"generic_task\" AND resource.labels.job=\"${local.datasets[name].job_name}\""
                      aggregation = {
                        alignmentPeriod    = "86400s"
                        perSeriesAligner   = "ALIGN_DELTA"
                        crossSeriesReducer = try(f.reducer, "REDUCE_SUM")
                        groupByFields      = f.group_by
                      }
                    }
                  }
                }],
                [for q in try(chart.promql, []) : {
                  plotType        = chart.plot
                  targetAxis      = "Y1"
                  timeSeriesQuery = { prometheusQuery = q, unitOverride = "h" }
                }],
              )
            },
            # Sent only when there are some: the API leaves an empty list
            # out of what it returns, which would show as a change.
            can(chart.thresholds) ? { thresholds = chart.thresholds } : null,
          )
        }
      })],
    )
  ])

  dashboard = {
    displayName  = "${var.job_name}: published lists"
    mosaicLayout = { columns = 12, tiles = local.dashboard_tiles }
  }
}

resource "google_monitoring_dashboard" "spoc" {
  dashboard_json = jsonencode(local.dashboard)
  depends_on     = [time_sleep.apis_ready]
}
