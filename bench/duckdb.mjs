// DuckDB side of bench/compare.sh, run with Node.js and @duckdb/node-api:
//
//   node duckdb.mjs typed BODY.json OUT.parquet  the JSON-to-Parquet work as a DuckDB user writes it
//   node duckdb.mjs copy BODY.json OUT.parquet   the same with mspo-spoc's exact rules
//   node duckdb.mjs same A.parquet B.parquet     exit 0 if both hold the same rows
//   node duckdb.mjs rows FILE.parquet            print the row count
//   node duckdb.mjs query SQL                    print the rows of a query, as JSON (for the README's queries' test)
//
// Both read the whole body as one JSON document (that is how read_json
// works on a top-level object). "typed" is the strongest query a DuckDB
// user would write, and the baseline of the comparison: the JSON types
// declared (BIGINT ids, BOOLEAN deleted, VARCHAR for the strings and the
// decimal strings), TRY_CAST for the decimals and timestamps, a cast for
// the ids. "copy" declares every field VARCHAR and converts each column the
// way mspo-spoc does (trimmed, the coordinate ranges, invalid values null,
// records without an id dropped), so that its output can be compared with
// the job's row for row.
import { DuckDBInstance } from '@duckdb/node-api';
import { statSync } from 'node:fs';

const [mode, a, b] = process.argv.slice(2);
const quote = (s) => `'${s.replaceAll("'", "''")}'`;

const fields = [
  'entity_smallholder_id', 'entity_name', 'mpob_no', 'name', 'planted_area', 'certified_area',
  'gps_coordinate_lat', 'gps_coordinate_long', 'stateId', 'state', 'daerahId', 'daerah',
  'mukimId', 'mukim', 'lot_no', 'zoneId', 'zone', 'spoc_code', 'cert_no', 'cert_status',
  'track_id', 'record_status', 'deleted', 'created_at', 'updated_at',
];

const num = (f, lo, hi) => {
  const v = `TRY_CAST(trim(r.${f}) AS DOUBLE)`;
  return lo === undefined ? v : `CASE WHEN ${v} BETWEEN ${lo} AND ${hi} THEN ${v} END`;
};
const int = (f) => `TRY_CAST(trim(r.${f}) AS INTEGER)`;
const ts = (f) => `TRY_CAST(trim(r.${f}) AS TIMESTAMPTZ)`;

function copySQL(body, out) {
  const struct = fields.map((f) => `"${f}" VARCHAR`).join(', ');
  const maxObject = statSync(body).size + (1 << 20);
  return `
COPY (
  SELECT
    TRY_CAST(trim(r.entity_smallholder_id) AS BIGINT) AS entity_smallholder_id,
    r.entity_name, r.mpob_no, r.name,
    ${num('planted_area')} AS planted_area,
    ${num('certified_area')} AS certified_area,
    ${num('gps_coordinate_lat', -90, 90)} AS gps_coordinate_lat,
    ${num('gps_coordinate_long', -180, 180)} AS gps_coordinate_long,
    ${int('stateId')} AS state_id, r.state,
    ${int('daerahId')} AS daerah_id, r.daerah,
    ${int('mukimId')} AS mukim_id, r.mukim,
    r.lot_no,
    ${int('zoneId')} AS zone_id, r.zone,
    r.spoc_code, r.cert_no, r.cert_status, r.track_id, r.record_status,
    CASE lower(trim(r.deleted)) WHEN 'true' THEN true WHEN 'false' THEN false END AS deleted,
    ${ts('created_at')} AS created_at,
    ${ts('updated_at')} AS updated_at
  FROM (
    SELECT unnest(data.results) AS r
    FROM read_json(${quote(body)},
      columns = {data: 'STRUCT(results STRUCT(${struct})[])'},
      maximum_object_size = ${maxObject})
  )
  WHERE TRY_CAST(trim(r.entity_smallholder_id) AS BIGINT) IS NOT NULL
) TO ${quote(out)} (FORMAT parquet, COMPRESSION zstd)`;
}

function typedSQL(body, out) {
  const maxObject = statSync(body).size + (1 << 20);
  const results = [
    'entity_smallholder_id BIGINT', 'entity_name VARCHAR', 'mpob_no VARCHAR', 'planted_area VARCHAR',
    'certified_area VARCHAR', 'gps_coordinate_lat VARCHAR', 'gps_coordinate_long VARCHAR', 'geolocation VARCHAR',
    'name VARCHAR', 'stateId BIGINT', 'state VARCHAR', 'daerahId BIGINT', 'daerah VARCHAR', 'mukimId BIGINT',
    'mukim VARCHAR', 'lot_no VARCHAR', 'cert_status VARCHAR', 'zoneId BIGINT', 'zone VARCHAR', 'cert_no VARCHAR',
    'spoc_code VARCHAR', 'created_at VARCHAR', 'updated_at VARCHAR', 'track_id VARCHAR', 'record_status VARCHAR',
    'deleted BOOLEAN',
  ].join(', ');
  return `
COPY (
  SELECT
    r.entity_smallholder_id, r.entity_name, r.mpob_no, r.name,
    TRY_CAST(r.planted_area AS DOUBLE) AS planted_area,
    TRY_CAST(r.certified_area AS DOUBLE) AS certified_area,
    TRY_CAST(r.gps_coordinate_lat AS DOUBLE) AS gps_coordinate_lat,
    TRY_CAST(r.gps_coordinate_long AS DOUBLE) AS gps_coordinate_long,
    CAST(r.stateId AS INTEGER) AS state_id, r.state,
    CAST(r.daerahId AS INTEGER) AS daerah_id, r.daerah,
    CAST(r.mukimId AS INTEGER) AS mukim_id, r.mukim,
    r.lot_no,
    CAST(r.zoneId AS INTEGER) AS zone_id, r.zone,
    r.spoc_code, r.cert_no, r.cert_status, r.track_id, r.record_status, r.deleted,
    TRY_CAST(r.created_at AS TIMESTAMPTZ) AS created_at,
    TRY_CAST(r.updated_at AS TIMESTAMPTZ) AS updated_at
  FROM (
    SELECT unnest(data.results) AS r
    FROM read_json(${quote(body)}, format = 'auto', records = true,
      columns = {status: 'VARCHAR', message: 'VARCHAR',
                 data: 'STRUCT(page_size VARCHAR, results STRUCT(${results})[], total BIGINT)'},
      maximum_object_size = ${maxObject})
  )
  WHERE r.entity_smallholder_id IS NOT NULL
) TO ${quote(out)} (FORMAT parquet, COMPRESSION zstd)`;
}

const db = await DuckDBInstance.create(':memory:', { threads: '2' });
const con = await db.connect();
const one = async (sql) => (await con.runAndReadAll(sql)).getRows()[0][0];

switch (mode) {
  case 'copy':
    await con.run("SET TimeZone = 'UTC'");
    await con.run(copySQL(a, b));
    break;
  case 'typed':
    await con.run("SET TimeZone = 'UTC'");
    await con.run(typedSQL(a, b));
    break;
  case 'rows':
    console.log(String(await one(`SELECT count(*) FROM read_parquet(${quote(a)})`)));
    break;
  case 'query':
    console.log(JSON.stringify((await con.runAndReadAll(a)).getRowObjectsJson()));
    break;
  case 'same': {
    const ra = `read_parquet(${quote(a)})`;
    const rb = `read_parquet(${quote(b)})`;
    const onlyA = await one(`SELECT count(*) FROM (SELECT * FROM ${ra} EXCEPT ALL SELECT * FROM ${rb})`);
    const onlyB = await one(`SELECT count(*) FROM (SELECT * FROM ${rb} EXCEPT ALL SELECT * FROM ${ra})`);
    const rows = await one(`SELECT count(*) FROM ${ra}`);
    console.log(`rows ${rows}; only in the first: ${onlyA}; only in the second: ${onlyB}`);
    process.exitCode = onlyA === 0n && onlyB === 0n ? 0 : 1;
    break;
  }
  default:
    console.error('usage: node duckdb.mjs typed BODY OUT | copy BODY OUT | same A B | rows FILE | query SQL');
    process.exitCode = 2;
}
