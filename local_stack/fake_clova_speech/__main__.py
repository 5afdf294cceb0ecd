from local_stack.fake_clova_speech import ClovaSpeechConfig, FakeClovaSpeech
from local_stack.http_fake import serve_main

serve_main(FakeClovaSpeech, ClovaSpeechConfig)
