from local_stack.fake_clova import ClovaConfig, FakeClova
from local_stack.http_fake import serve_main

serve_main(FakeClova, ClovaConfig)
