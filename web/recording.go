package web

import (
	"net/http"

	"caplab/lessons"
)

// handleRecordingLesson answers GET /api/recording/lesson (token): the
// actions since the last reset or "Start recording" as a lesson file.
func (s *Server) handleRecordingLesson(w http.ResponseWriter, r *http.Request) {
	md, err := lessons.Record(s.lab.Recorder().Recording())
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
	writeJSON(w, http.StatusOK, s.lab.Recorder().Status())
}

// handleRecordingStart answers POST /api/recording/start (token): forget
// the recording and record from now on. The body is {} (or empty); anything
// else is refused and the recording kept.
func (s *Server) handleRecordingStart(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	rec := s.lab.Recorder()
	rec.Start()
	writeJSON(w, http.StatusOK, rec.Status())
}
