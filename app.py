"""astrovlm in the browser: ``python app.py [options]`` is ``astrovlm app [options]``; then open http://127.0.0.1:7860"""
from astrovlm.webapp.launch import main
if __name__ == "__main__": raise SystemExit(main())  # noqa: E701
