// Package fakebigquery is a BigQuery API server on loopback for tests:
// the part of the REST API (v2) that load jobs use, jobs.insert, jobs.get
// and jobs.cancel, answered as BigQuery answers them. A load job reads its
// gs:// sources when it is inserted, through the Read function a test
// gives (from the GCS emulator), and keeps what it loaded by table
// partition, so a test can compare the partitions with the committed
// objects. Failures can be switched on: every request answered 500, or
// every job ending with an error.
package fakebigquery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/parquet/file"
	bq "google.golang.org/api/bigquery/v2"
)

// Failure is how the server fails, when it does.
type Failure int

const (
	// None: the server works.
	None Failure = iota
	// Unavailable answers every request 500, as BigQuery does during an
	// incident: the client library retries it until its context ends.
	Unavailable
	// JobError ends every load job with an error result, as a load that
	// does not match its table's schema ends.
	JobError
	// Hang keeps every job running: it never ends.
	Hang
	// LostInsert makes each job, and answers its creation 503, as if the
	// answer were lost on the way: the client's retry of the same job
	// finds it made already (409).
	LostInsert
	// NoStatistics ends every job without its statistics.
	NoStatistics
	// EmptyAnswer makes each job, and answers its creation 200 with {}.
	EmptyAnswer
	// HugeError answers every job's creation 500 with a 4 MiB message.
	HugeError
	// Redirect answers every look at a job with a 302 to the URL given
	// to RedirectTo, the path kept.
	Redirect
	// LostUnreadable is LostInsert with every look at a job answered
	// 500: the job is made, and cannot be read back.
	LostUnreadable
	// Collide refuses every job's creation as a duplicate (409), and
	// answers a look at it with another project's query job of that ID.
	Collide
)

// Load is one load job as the server received it.
type Load struct {
	JobID string
	// Table is PROJECT.DATASET.TABLE as the job names it, its partition
	// decorator ($YYYYMMDD) included.
	Table               string
	SourceURIs          []string
	SourceFormat        string
	WriteDisposition    string
	CreateDisposition   string
	ListInference       bool
	SchemaUpdateOptions []string
	Labels              map[string]string
}

// Partition is what a table's partition holds after its last load that
// succeeded: the source's bytes and rows.
type Partition struct {
	URI  string
	Data []byte
	Rows int64
}

// Server is a fake BigQuery API.
type Server struct {
	// URL is the endpoint to give the client (SPOC_BIGQUERY_ENDPOINT).
	URL string

	srv  *httptest.Server
	read func(ctx context.Context, uri string) ([]byte, error)

	mu         sync.Mutex
	failure    Failure
	tables     map[string]bool // PROJECT.DATASET.TABLE
	jobs       map[string]*bq.Job
	loads      []Load
	partitions map[string]Partition // by Load.Table
	cancelled  []string
	requests   int
	redirectTo string
	lost       map[string]bool // jobs whose creation was answered 503
}

// RedirectTo sets where Redirect sends the looks at a job.
func (s *Server) RedirectTo(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirectTo = url
}

// New starts a server on 127.0.0.1 that knows tables (PROJECT.DATASET.TABLE)
// and reads a load's sources with read. Close stops it.
func New(read func(ctx context.Context, uri string) ([]byte, error), tables ...string) *Server {
	s := &Server{read: read, tables: map[string]bool{}, jobs: map[string]*bq.Job{}, partitions: map[string]Partition{}, lost: map[string]bool{}}
	for _, t := range tables {
		s.tables[t] = true
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Fail sets how the server fails from now on (None: it works again).
func (s *Server) Fail(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure = f
}

// Loads are the load jobs received, in order.
func (s *Server) Loads() []Load {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Load(nil), s.loads...)
}

// Partitions are the table partitions loaded, by PROJECT.DATASET.TABLE$YYYYMMDD.
func (s *Server) Partitions() map[string]Partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Partition, len(s.partitions))
	for k, v := range s.partitions {
		out[k] = v
	}
	return out
}

// Cancelled are the IDs of the jobs a client asked to cancel.
func (s *Server) Cancelled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cancelled...)
}

// Requests is the number of requests received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

const apiPath = "/bigquery/v2/projects/"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	failure := s.failure
	s.mu.Unlock()
	if failure == Unavailable {
		writeError(w, http.StatusInternalServerError, "backendError", "the fake BigQuery is unavailable")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, apiPath)
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "no such API: "+r.URL.Path)
		return
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 3 && parts[1] == "datasets" && r.Method == http.MethodGet:
		s.dataset(w, parts[0], parts[2])
	case len(parts) == 3 && parts[1] == "jobs" && r.Method == http.MethodGet && failure == LostUnreadable:
		writeError(w, http.StatusInternalServerError, "backendError", "the job cannot be read")
	case len(parts) == 2 && parts[1] == "jobs" && r.Method == http.MethodPost && failure == Collide:
		writeError(w, http.StatusConflict, "duplicate", "Already Exists: Job "+parts[0])
	case len(parts) == 3 && parts[1] == "jobs" && r.Method == http.MethodGet && failure == Collide:
		writeJSON(w, http.StatusOK, &bq.Job{
			JobReference:  &bq.JobReference{ProjectId: "other-project", JobId: parts[2], Location: "asia-southeast1"},
			Configuration: &bq.JobConfiguration{Query: &bq.JobConfigurationQuery{Query: "SELECT 1"}},
			Status:        &bq.JobStatus{State: "RUNNING"},
		})
	case len(parts) == 3 && parts[1] == "jobs" && r.Method == http.MethodGet && failure == Redirect:
		s.mu.Lock()
		to := s.redirectTo
		s.mu.Unlock()
		http.Redirect(w, r, to+r.URL.RequestURI(), http.StatusFound)
	case len(parts) == 2 && parts[1] == "jobs" && r.Method == http.MethodPost && failure == HugeError:
		writeError(w, http.StatusInternalServerError, "backendError", strings.Repeat("x", 4<<20))
	case len(parts) == 2 && parts[1] == "jobs" && r.Method == http.MethodPost:
		s.insert(w, r, parts[0])
	case len(parts) == 3 && parts[1] == "jobs" && r.Method == http.MethodGet:
		s.get(w, parts[0], parts[2])
	case len(parts) == 4 && parts[1] == "jobs" && parts[3] == "cancel" && r.Method == http.MethodPost:
		s.cancel(w, parts[0], parts[2])
	default:
		writeError(w, http.StatusNotFound, "notFound", "the fake serves datasets.get, jobs.insert, jobs.get and jobs.cancel only, not "+r.Method+" "+r.URL.Path)
	}
}

func (s *Server) insert(w http.ResponseWriter, r *http.Request, project string) {
	var job bq.Job
	if err := json.NewDecoder(r.Body).Decode(&job); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "job: "+err.Error())
		return
	}
	load := job.Configuration.Load
	if job.JobReference == nil || job.JobReference.JobId == "" || load == nil || load.DestinationTable == nil {
		writeError(w, http.StatusBadRequest, "invalid", "the fake takes load jobs with a job ID and a destination table only")
		return
	}
	dst := load.DestinationTable
	l := Load{
		JobID:               job.JobReference.JobId,
		Table:               dst.ProjectId + "." + dst.DatasetId + "." + dst.TableId,
		SourceURIs:          load.SourceUris,
		SourceFormat:        load.SourceFormat,
		WriteDisposition:    load.WriteDisposition,
		CreateDisposition:   load.CreateDisposition,
		ListInference:       load.ParquetOptions != nil && load.ParquetOptions.EnableListInference,
		SchemaUpdateOptions: load.SchemaUpdateOptions,
		Labels:              job.Configuration.Labels,
	}
	s.mu.Lock()
	if _, dup := s.jobs[l.JobID]; dup {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, "duplicate", "Already Exists: Job "+project+":"+l.JobID)
		return
	}
	failure := s.failure
	s.loads = append(s.loads, l)
	s.mu.Unlock()

	job.JobReference.ProjectId = project
	job.JobReference.Location = "asia-southeast1"
	job.Status = &bq.JobStatus{State: "RUNNING"}
	job.Statistics = &bq.JobStatistics{}
	if failure != Hang {
		// Done at the next look: a client must poll.
		job.Status.ErrorResult = s.run(r.Context(), l, failure)
		if job.Status.ErrorResult == nil {
			job.Statistics.Load = &bq.JobStatistics3{OutputRows: s.partition(l.Table).Rows, InputFiles: int64(len(l.SourceURIs))}
		}
	}
	if failure == NoStatistics {
		job.Statistics = nil
	}
	out, _ := json.Marshal(&job)
	s.mu.Lock()
	s.jobs[l.JobID] = &job
	lose := (failure == LostInsert || failure == LostUnreadable) && !s.lost[l.JobID]
	s.lost[l.JobID] = true
	s.mu.Unlock()
	switch {
	case lose:
		writeError(w, http.StatusServiceUnavailable, "backendError", "the answer to the job's creation is lost")
		return
	case failure == EmptyAnswer:
		out = []byte("{}")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// dataset answers datasets.get for a dataset that holds a known table.
func (s *Server) dataset(w http.ResponseWriter, project, id string) {
	s.mu.Lock()
	found := false
	for t := range s.tables {
		found = found || strings.HasPrefix(t, project+"."+id+".")
	}
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "notFound", "Not found: Dataset "+project+":"+id)
		return
	}
	writeJSON(w, http.StatusOK, &bq.Dataset{
		Id:               project + ":" + id,
		DatasetReference: &bq.DatasetReference{ProjectId: project, DatasetId: id},
		Location:         "asia-southeast1",
	})
}

// run does the load of l and returns its error, or nil when it loaded.
func (s *Server) run(ctx context.Context, l Load, failure Failure) *bq.ErrorProto {
	base, _, _ := strings.Cut(l.Table, "$")
	s.mu.Lock()
	exists := s.tables[base]
	s.mu.Unlock()
	switch {
	case failure == JobError:
		return &bq.ErrorProto{Reason: "invalid", Message: "Provided Schema does not match Table " + base + " (the fake fails every job)"}
	case !exists && l.CreateDisposition == "CREATE_NEVER":
		return &bq.ErrorProto{Reason: "notFound", Message: "Not found: Table " + base}
	case l.SourceFormat != "PARQUET":
		return &bq.ErrorProto{Reason: "invalid", Message: "the fake loads PARQUET only, not " + l.SourceFormat}
	case len(l.SourceURIs) != 1:
		return &bq.ErrorProto{Reason: "invalid", Message: fmt.Sprintf("the fake loads one source a job, not %d", len(l.SourceURIs))}
	}
	data, err := s.read(ctx, l.SourceURIs[0])
	if err != nil {
		return &bq.ErrorProto{Reason: "notFound", Message: "Not found: URI " + l.SourceURIs[0] + ": " + err.Error()}
	}
	rd, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		return &bq.ErrorProto{Reason: "invalid", Message: "Error while reading data: " + err.Error()}
	}
	p := Partition{URI: l.SourceURIs[0], Data: data, Rows: rd.NumRows()}
	rd.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch l.WriteDisposition {
	case "WRITE_TRUNCATE":
		s.partitions[l.Table] = p
	case "WRITE_EMPTY":
		if _, ok := s.partitions[l.Table]; ok {
			return &bq.ErrorProto{Reason: "duplicate", Message: "Already Exists: " + l.Table}
		}
		s.partitions[l.Table] = p
	default:
		// Appending is not modelled: a test of this job has no use for it.
		return &bq.ErrorProto{Reason: "invalid", Message: "the fake does not append (" + l.WriteDisposition + ")"}
	}
	return nil
}

func (s *Server) partition(table string) Partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.partitions[table]
}

func (s *Server) get(w http.ResponseWriter, project, id string) {
	s.answerJob(w, project, id, func(job *bq.Job) any {
		if job.Status.State == "RUNNING" && s.failure != Hang {
			job.Status.State = "DONE"
			if job.Status.ErrorResult != nil {
				job.Status.Errors = []*bq.ErrorProto{job.Status.ErrorResult}
			}
		}
		return job
	})
}

func (s *Server) cancel(w http.ResponseWriter, project, id string) {
	s.answerJob(w, project, id, func(job *bq.Job) any {
		s.cancelled = append(s.cancelled, id)
		return &bq.JobCancelResponse{Job: job}
	})
}

// answerJob answers a request about job id with what answer returns for
// it, called with s.mu held, or with the API's 404 for an unknown job.
func (s *Server) answerJob(w http.ResponseWriter, project, id string, answer func(*bq.Job) any) {
	s.mu.Lock()
	job, ok := s.jobs[id]
	var out []byte
	if ok {
		out, _ = json.Marshal(answer(job))
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "Not found: Job "+project+":"+id)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers as the API does: {"error": {code, message, errors}}.
func writeError(w http.ResponseWriter, status int, reason, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code":    status,
		"message": message,
		"errors":  []map[string]string{{"reason": reason, "message": message}},
	}})
}
