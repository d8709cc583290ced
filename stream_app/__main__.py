from stream_app.cli import main

if __name__ == "__main__":  # guarded: spawned inference processes re-import this module
    raise SystemExit(main())
