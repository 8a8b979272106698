package web

import (
	"net/http"

	"caplab/lab"
	"caplab/lessons"
)

// Recorder is optionally implemented by the Lab: the recorder behind
// "Save as lesson" (lab/recording.go). *lab.Lab implements it.
type Recorder interface {
	StartRecording()
	Recording() lab.Recording
	RecordingStatus() lab.RecordingStatus
}

func (s *Server) recorder(w http.ResponseWriter) (Recorder, bool) {
	rec, ok := s.lab.(Recorder)
	if !ok {
		writeError(w, http.StatusNotImplemented, "This lab does not record its actions.")
	}
	return rec, ok
}

// handleRecordingLesson answers GET /api/recording/lesson (token): the
// actions since the last reset or "Start recording" as a lesson file.
func (s *Server) handleRecordingLesson(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.recorder(w)
	if !ok {
		return
	}
	md, err := lessons.Record(rec.Recording())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="recorded-lesson.md"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(md)
}

// handleRecordingStatus answers GET /api/recording (token): how many
// actions the recording holds, and a sentence for the presenter.
func (s *Server) handleRecordingStatus(w http.ResponseWriter, r *http.Request) {
	if rec, ok := s.recorder(w); ok {
		writeJSON(w, http.StatusOK, rec.RecordingStatus())
	}
}

// handleRecordingStart answers POST /api/recording/start (token): forget
// the recording and record from now on. The body is {} (or empty); anything
// else is refused and the recording kept.
func (s *Server) handleRecordingStart(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.recorder(w)
	if !ok {
		return
	}
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	rec.StartRecording()
	writeJSON(w, http.StatusOK, rec.RecordingStatus())
}
