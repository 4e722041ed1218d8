package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/calee-data/mspo-spoc/pkg/bqload"
	"github.com/calee-data/mspo-spoc/pkg/sink"
	"github.com/calee-data/mspo-spoc/pkg/snapshot"
	"github.com/calee-data/mspo-spoc/pkg/spoc"
	"github.com/calee-data/mspo-spoc/pkg/telemetry"
)

// validateBigQuery checks the SPOC_BIGQUERY_* settings: loads read the
// day's objects from their gs:// URLs, so they need a bucket output.
func (c *Config) validateBigQuery() error {
	if c.BigQueryDataset == "" {
		if c.BigQueryEndpoint != "" {
			return &ConfigError{Var: "SPOC_BIGQUERY_ENDPOINT", Err: errors.New("set without SPOC_BIGQUERY_DATASET, which turns the loads on: set both, or neither")}
		}
		return nil
	}
	if _, _, err := bqload.ParseDataset(c.BigQueryDataset); err != nil {
		return &ConfigError{Var: "SPOC_BIGQUERY_DATASET", Err: err}
	}
	if !strings.HasPrefix(c.Output, "gs://") {
		return &ConfigError{Var: "SPOC_BIGQUERY_DATASET", Err: fmt.Errorf("set with the local output %s: BigQuery loads the day's objects from Cloud Storage, so SPOC_OUTPUT must be gs://BUCKET", quote(c.Output))}
	}
	if c.BigQueryEndpoint != "" {
		if _, _, err := bqload.ParseEndpoint(c.BigQueryEndpoint); err != nil {
			return &ConfigError{Var: "SPOC_BIGQUERY_ENDPOINT", Err: err}
		}
	}
	return nil
}

// newLoader is the run's BigQuery loader, or nil without
// SPOC_BIGQUERY_DATASET.
func newLoader(ctx context.Context, cfg *Config, providers *telemetry.Providers, log *slog.Logger) (*bqload.Loader, error) {
	if cfg.BigQueryDataset == "" {
		return nil, nil
	}
	return bqload.New(ctx, bqload.Options{
		Dataset:        cfg.BigQueryDataset,
		Endpoint:       cfg.BigQueryEndpoint,
		Timeout:        cfg.BigQueryTimeout,
		TimeoutSetting: "SPOC_BIGQUERY_TIMEOUT",
		Logger:         log,
		MeterProvider:  providers.Meter,
	})
}

// Native table kinds: list NAME's table of each is NAME_KIND_native
// (deploy/bigquery.tf makes them).
const (
	tableSnapshots = "snapshots"
	tableChanges   = "changes"
	tableVersions  = "versions"
	tableGeo       = "geo"
)

// nativeTable is the native table of list ds's objects of kind.
func nativeTable(ds *spoc.Dataset, kind string) string {
	return ds.Name + "_" + kind + "_native"
}

// dayObjects are the objects of the day m describes, in folder dir, and
// their native tables: the snapshot, and the change table, the versions
// and the geolocation layer where the day has them. Each object's URL is
// the store's (objectURL) for its name in the folder, not the one the
// manifest holds: a manifest read back says which objects the day has
// and their rows, never where a load reads from.
func dayObjects(ds *spoc.Dataset, m *snapshot.Manifest, dir string, objectURL func(name string) string) []bqload.Object {
	names := snapshot.NamesOf(ds)
	object := func(kind, name string, rows int64) bqload.Object {
		return bqload.Object{Table: nativeTable(ds, kind), URI: objectURL(dir + "/" + name), Rows: rows}
	}
	objects := []bqload.Object{object(tableSnapshots, names.Parquet, m.Parquet.Rows)}
	if m.Changes != nil {
		objects = append(objects, object(tableChanges, names.Changes, m.Changes.Rows))
	}
	if m.Versions != nil {
		objects = append(objects, object(tableVersions, names.Versions, m.Versions.Rows))
	}
	if m.Geo != nil {
		objects = append(objects, object(tableGeo, names.Geo, m.Geo.Rows))
	}
	return objects
}

// loadDay loads list l's day into BigQuery: the day m describes, or,
// when the run found the day unchanged (m nil), the day as its manifest
// has it, so that a rerun repairs a load that failed.
func loadDay(ctx context.Context, loader *bqload.Loader, store sink.Store, l list, day time.Time, m *snapshot.Manifest) error {
	dir := snapshot.Dir(l.Prefix, day)
	if m == nil {
		name := dir + "/" + snapshot.NamesOf(l.Dataset).Manifest
		var err error
		if m, err = snapshot.ReadManifest(ctx, store, name); err != nil {
			return fmt.Errorf("%w: %w", bqload.ErrLoad, err)
		}
		if m == nil {
			return fmt.Errorf("%w: the day's manifest %s is gone", bqload.ErrLoad, store.URL(name))
		}
	}
	return loader.Load(ctx, l.Dataset.Name, day, dayObjects(l.Dataset, m, dir, store.URL))
}

// bigQueryFix says what to check when a load failed.
func bigQueryFix(err error) string {
	fix := "the day is published in Cloud Storage; rerun the day to load it again (a rerun that finds it unchanged still loads it). Check that the tables exist (deploy/: bigquery_tables = \"native\"), that the job's account has roles/bigquery.dataEditor on the dataset and roles/bigquery.jobUser on the project, and BigQuery's status"
	if errors.Is(err, context.DeadlineExceeded) {
		fix += "; SPOC_BIGQUERY_TIMEOUT sets the time the loads may take"
	}
	return fix
}
