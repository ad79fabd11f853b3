@echo off
rem RecoMart for Windows: the same commands as run_pipeline.sh.
rem   run_pipeline.bat up | run | ingest | ui | app | test | install   (no argument: menu)
rem   run_pipeline.bat test --repeat 5 -m browser   the same pytest run 5 times in a row, to catch flaky tests
rem The app binds RECOMART_BIND_HOST (default 127.0.0.1). The Dagster webserver always binds 127.0.0.1:
rem Dagster OSS has no sign-in, so other machines reach it only through an authenticating proxy in front.
rem RECOMART_SKIP_INSTALL=1 uses .venv as it is, with no pip install.
setlocal EnableDelayedExpansion
cd /d "%~dp0"
set "ROOT=%CD%"
if "%DAGSTER_HOME%"=="" set "DAGSTER_HOME=%ROOT%\.dagster_home"
if "%RECOMART_BIND_HOST%"=="" (set "APP_HOST=127.0.0.1") else (set "APP_HOST=%RECOMART_BIND_HOST%")
set "DAGSTER_BIND=127.0.0.1"
if "%DAGSTER_PORT%"=="" set "DAGSTER_PORT=3000"
if "%APP_PORT%"=="" set "APP_PORT=8501"
set "VENV=%ROOT%\.venv"
set "PY=%VENV%\Scripts\python.exe"
set "MODULE=dagster_project.definitions"

set "CMD=%~1"
if "%CMD%"=="" goto menu
goto %CMD% 2>nul || (echo usage: %~nx0 [install^|run^|ingest^|ui^|app^|up^|test [--repeat N]] & exit /b 2)

:install_env
if not exist "%PY%" (
  echo Creating virtual environment in %VENV%
  py -3.11 -m venv "%VENV%" 2>nul || python -m venv "%VENV%" || exit /b 1
)
if not "%RECOMART_SKIP_INSTALL%"=="1" (
  "%PY%" -m pip install --quiet --upgrade pip
  "%PY%" -m pip install --quiet -r %REQS% || exit /b 1
  rem The project itself, editable, so its packages import from any folder.
  "%PY%" -m pip install --quiet --no-deps -e . || exit /b 1
)
if not exist "%DAGSTER_HOME%" mkdir "%DAGSTER_HOME%"
copy /y dagster.yaml "%DAGSTER_HOME%\dagster.yaml" >nul
if not exist data\users*.csv "%PY%" -m dagster_project.sample_data --out data
exit /b 0

:install
set "REQS=requirements-dev.txt" & call :install_env & exit /b

:run
set "REQS=requirements.txt" & call :install_env || exit /b 1
"%VENV%\Scripts\dagster.exe" job execute -m %MODULE% -j complete_pipeline_job & exit /b

:ingest
set "REQS=requirements.txt" & call :install_env || exit /b 1
"%VENV%\Scripts\dagster.exe" job execute -m %MODULE% -j ingestion_job & exit /b

:ui
set "REQS=requirements.txt" & call :install_env || exit /b 1
"%VENV%\Scripts\dagster.exe" dev -m %MODULE% -h %DAGSTER_BIND% -p %DAGSTER_PORT% & exit /b

:app
set "REQS=requirements.txt" & call :install_env || exit /b 1
"%VENV%\Scripts\streamlit.exe" run streamlit_app\app.py --server.address %APP_HOST% --server.port %APP_PORT% --server.headless true --browser.gatherUsageStats false
exit /b

:up
set "REQS=requirements.txt" & call :install_env || exit /b 1
if not exist models\collaborative_filtering.pkl "%VENV%\Scripts\dagster.exe" job execute -m %MODULE% -j complete_pipeline_job
start "RecoMart Dagster" "%VENV%\Scripts\dagster.exe" dev -m %MODULE% -h %DAGSTER_BIND% -p %DAGSTER_PORT%
"%VENV%\Scripts\streamlit.exe" run streamlit_app\app.py --server.address %APP_HOST% --server.port %APP_PORT% --server.headless true --browser.gatherUsageStats false
exit /b

:test
set "REQS=requirements-dev.txt" & call :install_env || exit /b 1
if not "%~2"=="--repeat" (
  "%PY%" -m pytest %2 %3 %4 %5 %6 %7 %8 %9
  exit /b
)
rem The same tests N times in a row, each a fresh pytest; opt-in, CI runs the suite once.
set /a "FAILED=0"
for /l %%i in (1,1,%~3) do (
  echo === repeat %%i of %~3 ===
  "%PY%" -m pytest %4 %5 %6 %7 %8 %9
  if errorlevel 1 set /a "FAILED+=1"
)
set /a "PASSED=%~3-FAILED"
echo %PASSED% of %~3 repeats passed
if not "%FAILED%"=="0" exit /b 1
exit /b 0

:menu
rem One menu for every platform: dagster_quickstart.py asks, then runs this script with the choice.
py -3.11 "%ROOT%\dagster_quickstart.py" 2>nul || python "%ROOT%\dagster_quickstart.py"
exit /b
